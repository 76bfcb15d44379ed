//! One isolated user per test: a temp HOME with its AWS files, config dir and socket,
//! the elhaz binary run with exactly that environment, and small helpers around it
//! (the daemon's wire, PATH, ports, clocks, bounded waits).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

use super::gate::Turn;
use super::sts::FakeSts;

pub const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/Admin";

/// The elhaz binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_elhaz"))
}

/// One isolated user: HOME, AWS files, config dir and socket all inside a temp dir.
pub struct TestEnv {
    pub dir: TempDir,
    pub home: PathBuf,
    pub vars: BTreeMap<String, String>,
    /// Its turn beside the other tests (see `gate`), held as long as the user exists.
    turn: Turn,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let turn = Turn::shared();
        let dir = tempfile::Builder::new()
            .prefix("elhaz-t")
            .tempdir()
            .unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".aws")).unwrap();
        let mut vars = BTreeMap::new();
        let s = |p: PathBuf| p.to_string_lossy().into_owned();
        vars.insert("HOME".into(), s(home.clone()));
        vars.insert("AWS_CONFIG_FILE".into(), s(home.join(".aws/config")));
        vars.insert(
            "AWS_SHARED_CREDENTIALS_FILE".into(),
            s(home.join(".aws/credentials")),
        );
        vars.insert("AWS_EC2_METADATA_DISABLED".into(), "true".into());
        vars.insert("PATH".into(), test_path());
        vars.insert("USER".into(), "tester".into());
        vars.insert("LANG".into(), "C.UTF-8".into());
        TestEnv {
            dir,
            home,
            vars,
            turn,
        }
    }

    /// A test env whose STS is `endpoint`, with static source keys in the environment.
    pub fn with_sts(endpoint: &str) -> TestEnv {
        let mut t = TestEnv::new();
        t.set("AWS_ENDPOINT_URL_STS", endpoint);
        t.set("AWS_ACCESS_KEY_ID", "AKIASOURCEKEY0000000");
        t.set("AWS_SECRET_ACCESS_KEY", "source-secret-key");
        t.set("AWS_REGION", "us-east-1");
        t
    }

    /// The usual start of a test: a fake STS issuing credentials for `lifetime`, and a
    /// user whose source keys are in the environment and who has config `prod`
    /// assuming ROLE_ARN. Returned in that order, so the user (and its daemon) goes
    /// before the STS it uses.
    pub async fn with_role(lifetime: Duration) -> (FakeSts, TestEnv) {
        let sts = FakeSts::start(lifetime).await;
        let t = TestEnv::with_sts(&sts.uri());
        t.role_config("prod", "");
        (sts, t)
    }

    pub fn set(&mut self, k: &str, v: &str) -> &mut Self {
        self.vars.insert(k.into(), v.into());
        self
    }

    pub fn unset(&mut self, k: &str) -> &mut Self {
        self.vars.remove(k);
        self
    }

    pub fn config_dir(&self) -> PathBuf {
        self.home.join(".elhaz/configs")
    }

    pub fn socket(&self) -> PathBuf {
        self.home.join(".elhaz/sock/daemon.sock")
    }

    pub fn log(&self) -> PathBuf {
        self.home.join(".elhaz/logs/daemon.log")
    }

    /// The elhaz binary with exactly this env's variables.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::new(bin());
        c.env_clear().envs(&self.vars);
        c
    }

    /// The same as a std Command (for spawning, ptys and signals).
    pub fn std_cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.env_clear().envs(&self.vars);
        c
    }

    /// Any program with this env's variables.
    pub fn program(&self, prog: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(prog);
        c.env_clear().envs(&self.vars);
        c
    }

    pub fn write_config(&self, name: &str, yaml: &str) -> PathBuf {
        let dir = self.config_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let p = dir.join(format!("{name}.yaml"));
        std::fs::write(&p, yaml).unwrap();
        p
    }

    /// A minimal config assuming ROLE_ARN, with extra YAML under AssumeRole.
    pub fn role_config(&self, name: &str, extra: &str) -> PathBuf {
        self.write_config(
            name,
            &format!("AssumeRole:\n  RoleArn: {ROLE_ARN}\n{extra}"),
        )
    }

    pub fn write_aws_config(&self, text: &str) {
        std::fs::write(self.home.join(".aws/config"), text).unwrap();
    }

    /// Sends one raw line to the daemon and returns the raw answer line.
    pub fn raw_request(&self, line: &str) -> String {
        raw_request(&self.socket(), line)
    }

    pub fn request(&self, action: &str, payload: serde_json::Value) -> serde_json::Value {
        let req = serde_json::json!({
            "version": 1,
            "request_id": uuid(),
            "action": action,
            "payload": payload,
        });
        serde_json::from_str(&self.raw_request(&req.to_string())).unwrap()
    }

    pub fn start_daemon(&self) {
        self.cmd().args(["daemon", "start"]).assert().success();
    }

    /// The daemon's pid, from `daemon status --json`.
    pub fn daemon_pid(&self) -> Option<u32> {
        let out = self
            .cmd()
            .args(["daemon", "status", "--json"])
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["pid"].as_u64().map(|p| p as u32)
    }

    pub fn stop_daemon(&self) {
        if self.socket().exists() {
            let _ = self
                .std_cmd()
                .args(["daemon", "kill"])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        self.stop_daemon();
    }
}

pub fn raw_request(socket: &Path, line: &str) -> String {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(line.as_bytes()).unwrap();
    if !line.ends_with('\n') {
        s.write_all(b"\n").unwrap();
    }
    let mut out = String::new();
    BufReader::new(s).read_line(&mut out).unwrap();
    out
}

pub fn uuid() -> String {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let c = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "00000000-0000-4000-8000-{:012x}",
        (n as u64 ^ (c as u64) << 40) & 0xffff_ffff_ffff
    )
}

/// PATH for tests: the CI venv (moto, aws, boto3) first when it exists.
pub fn test_path() -> String {
    let base = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/venv/bin");
    if venv.is_dir() {
        format!("{}:{base}", venv.display())
    } else {
        base
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Waits until `f` is true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

pub fn which_on_path(name: &str) -> Option<PathBuf> {
    which_in(&test_path(), name)
}

pub fn which_in(path: &str, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `elhaz ARGS...` as the test user, waited for.
pub fn run(t: &TestEnv, args: &[&str]) -> std::process::Output {
    t.cmd().args(args).output().unwrap()
}

/// `elhaz --no-daemon ARGS...`.
pub fn local(t: &TestEnv, args: &[&str]) -> std::process::Output {
    let mut a = vec!["--no-daemon"];
    a.extend_from_slice(args);
    t.cmd().args(&a).output().unwrap()
}

/// The daemon's log without each line's timestamp, to search for a secret: the
/// microseconds of a timestamp may spell any six-digit MFA code.
pub fn log_untimed(t: &TestEnv) -> String {
    log_text(t)
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The daemon's log so far ("" before it has one).
pub fn log_text(t: &TestEnv) -> String {
    std::fs::read_to_string(t.log()).unwrap_or_default()
}

/// A directory for share sockets inside the test's temp dir.
pub fn share_dir(t: &TestEnv) -> PathBuf {
    let d = t.dir.path().join("shares");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `elhaz daemon share NAME --socket SOCKET EXTRA...`, which must succeed.
pub fn share(t: &TestEnv, name: &str, socket: &Path, extra: &[&str]) {
    let mut c = t.cmd();
    c.args(["daemon", "share", name, "--socket"])
        .arg(socket)
        .args(extra);
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "share failed: {}{}",
        crate::support::text(&o.stdout),
        crate::support::text(&o.stderr)
    );
}

/// Sets `$BROWSER` to a script that counts its launches in a file, and returns the
/// file: [`launches`] reads the count.
pub fn counting_browser(t: &mut TestEnv) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let count = t.home.join("browser-launches");
    let script = t.home.join("count-browser");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho launched >> '{}'\n", count.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    t.set("BROWSER", &script.to_string_lossy());
    count
}

/// How many times the [`counting_browser`] was launched.
pub fn launches(count: &Path) -> usize {
    std::fs::read_to_string(count).map_or(0, |s| s.lines().count())
}
