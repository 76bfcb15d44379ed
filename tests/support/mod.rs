//! Test harness shared by the integration tests: an isolated HOME per test, the
//! elhaz binary with a clean environment, a fake STS (wiremock) with call counts and
//! faults, and a real moto server.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

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
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
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
        TestEnv { dir, home, vars }
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

// ---------------------------------------------------------------------------
// moto: a real STS implementation, one server per test binary.

pub struct Moto {
    pub port: u16,
    child: Mutex<Child>,
}

impl Moto {
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Where moto_server is: $MOTO_SERVER, else PATH.
pub fn moto_server_path() -> PathBuf {
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    which_in(&test_path(), "moto_server").unwrap_or_else(|| {
        panic!("moto_server not found on PATH: install it with `pip install 'moto[server]'` (the CI script does)")
    })
}

pub fn which_on_path(name: &str) -> Option<PathBuf> {
    which_in(&test_path(), name)
}

pub fn which_in(path: &str, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The shared moto server, started on first use and killed with the test process.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let port = free_port();
        let mut cmd = Command::new(moto_server_path());
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        die_with_parent(&mut cmd);
        // PR_SET_PDEATHSIG fires when the spawning *thread* ends, and each test runs on
        // its own thread: spawn from a thread that lives as long as the test process.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(cmd.spawn());
            loop {
                std::thread::park();
            }
        });
        let child = rx.recv().unwrap().expect("start moto_server");
        let ok = wait_until(Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(ok, "moto_server did not listen on {port} within 30s");
        Moto {
            port,
            child: Mutex::new(child),
        }
    })
}

/// Makes `cmd` run as `uid`/`gid` with no supplementary groups (tests run as root).
pub fn as_user(cmd: &mut Command, uid: u32, gid: u32) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Makes a spawned helper die when the test process does.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

// ---------------------------------------------------------------------------
// A fake STS on wiremock: fresh keys per call, a settable lifetime, and faults.

#[derive(Clone, Debug)]
pub enum Fault {
    None,
    /// Answer with this HTTP status and AWS error code.
    Status(u16, &'static str),
    /// Answer correctly, after this delay.
    Delay(Duration),
}

#[derive(Clone)]
pub struct StsState {
    pub lifetime: Arc<Mutex<Duration>>,
    pub fault: Arc<Mutex<Fault>>,
    pub issued: Arc<AtomicUsize>,
    /// Seconds to add to the expiry (negative: already expired on arrival).
    pub skew: Arc<Mutex<i64>>,
}

pub struct FakeSts {
    pub server: wiremock::MockServer,
    pub state: StsState,
}

impl FakeSts {
    pub async fn start(lifetime: Duration) -> FakeSts {
        let server = wiremock::MockServer::start().await;
        let state = StsState {
            lifetime: Arc::new(Mutex::new(lifetime)),
            fault: Arc::new(Mutex::new(Fault::None)),
            issued: Arc::new(AtomicUsize::new(0)),
            skew: Arc::new(Mutex::new(0)),
        };
        wiremock::Mock::given(wiremock::matchers::method("POST"))
            .respond_with(StsResponder(state.clone()))
            .mount(&server)
            .await;
        FakeSts { server, state }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    pub fn set_fault(&self, f: Fault) {
        *self.state.fault.lock().unwrap() = f;
    }

    pub fn set_lifetime(&self, d: Duration) {
        *self.state.lifetime.lock().unwrap() = d;
    }

    /// Bodies of the requests whose Action is `action`.
    pub async fn calls(&self, action: &str) -> Vec<BTreeMap<String, String>> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| form(&String::from_utf8_lossy(&r.body)))
            .filter(|f| f.get("Action").map(String::as_str) == Some(action))
            .collect()
    }
}

impl FakeSts {
    /// Who signed each request whose Action is `action`, in order: the access key id
    /// of the Authorization header's `Credential=`.
    pub async fn signers(&self, action: &str) -> Vec<String> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| {
                form(&String::from_utf8_lossy(&r.body))
                    .get("Action")
                    .map(String::as_str)
                    == Some(action)
            })
            .map(|r| {
                r.headers
                    .get("authorization")
                    .and_then(|h| h.to_str().ok())
                    .and_then(signer_of)
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// The access key id in a SigV4 Authorization header (`Credential=KEY/date/...`).
pub fn signer_of(authorization: &str) -> Option<String> {
    let rest = authorization.split("Credential=").nth(1)?;
    Some(rest.split('/').next()?.to_string())
}

/// Parses a form-encoded body.
pub fn form(body: &str) -> BTreeMap<String, String> {
    url_pairs(body).into_iter().collect()
}

fn url_pairs(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct StsResponder(StsState);

fn iso(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let dt = time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
    dt.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

impl wiremock::Respond for StsResponder {
    fn respond(&self, req: &wiremock::Request) -> wiremock::ResponseTemplate {
        let f = form(&String::from_utf8_lossy(&req.body));
        let action = f.get("Action").cloned().unwrap_or_default();
        let fault = self.0.fault.lock().unwrap().clone();
        let mut delay = None;
        match fault {
            Fault::Status(status, code) => {
                let body = format!(
                    "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>fake {code}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
                );
                return wiremock::ResponseTemplate::new(status).set_body_raw(body, "text/xml");
            }
            Fault::Delay(d) => delay = Some(d),
            Fault::None => {}
        }
        let n = self.0.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let lifetime = *self.0.lifetime.lock().unwrap();
        let skew = *self.0.skew.lock().unwrap();
        let expiry = SystemTime::now() + lifetime;
        let expiry = if skew >= 0 {
            expiry + Duration::from_secs(skew as u64)
        } else {
            expiry - Duration::from_secs((-skew) as u64)
        };
        let creds = format!(
            "<Credentials><AccessKeyId>ASIAFAKE{n:012}</AccessKeyId><SecretAccessKey>fakesecret{n}xyz</SecretAccessKey><SessionToken>faketoken{n}xyz</SessionToken><Expiration>{}</Expiration></Credentials>",
            iso(expiry)
        );
        let body = match action.as_str() {
            "AssumeRole" | "AssumeRoleWithWebIdentity" => {
                let role = f.get("RoleArn").cloned().unwrap_or_default();
                let session = f.get("RoleSessionName").cloned().unwrap_or_default();
                let rname = role.rsplit('/').next().unwrap_or("role");
                format!(
                    "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><{action}Result>{creds}<AssumedRoleUser><AssumedRoleId>AROAFAKE:{session}</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/{rname}/{session}</Arn></AssumedRoleUser></{action}Result><ResponseMetadata><RequestId>r-{n}</RequestId></ResponseMetadata></{action}Response>"
                )
            }
            "GetCallerIdentity" => format!(
                "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:sts::123456789012:assumed-role/Admin/fake</Arn><UserId>AROAFAKE:fake</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>r-{n}</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
            ),
            _ => return wiremock::ResponseTemplate::new(400).set_body_string("unknown action"),
        };
        let t = wiremock::ResponseTemplate::new(200).set_body_raw(body, "text/xml");
        match delay {
            Some(d) => t.set_delay(d),
            None => t,
        }
    }
}

/// Reads a child's whole output with a deadline (for commands that might hang).
pub fn output_within(
    mut child: Child,
    timeout: Duration,
) -> (Option<std::process::ExitStatus>, String, String) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut out = String::new();
            let mut err = String::new();
            if let Some(mut o) = child.stdout.take() {
                let _ = o.read_to_string(&mut out);
            }
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return (Some(status), out, err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return (None, String::new(), String::new());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Terminal output as text: escape sequences (CSI, OSC, charset) and carriage returns
/// become `gap` (None: removed), other controls are dropped, newlines kept.
pub fn terminal_text(raw: &str, gap: Option<char>) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                match chars.next() {
                    Some('[') => {
                        for c in chars.by_ref() {
                            if ('\x40'..='\x7e').contains(&c) {
                                break;
                            }
                        }
                    }
                    Some(']') => {
                        while let Some(c) = chars.next() {
                            if c == '\x07' {
                                break;
                            }
                            if c == '\x1b' {
                                chars.next();
                                break;
                            }
                        }
                    }
                    Some('(') | Some(')') => {
                        chars.next();
                    }
                    _ => {}
                }
                out.extend(gap);
            }
            '\n' => out.push('\n'),
            '\r' => out.extend(gap),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The SHA-1 of `s` in hex, as the AWS CLI names its SSO token cache files.
pub fn sha1_hex(s: &str) -> String {
    let out = Command::new("sha1sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(s.as_bytes())?;
            c.wait_with_output()
        })
        .expect("sha1sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Output bytes as text, for messages and comparisons.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts a command succeeded, showing its status and both streams when it did not.
#[track_caller]
pub fn ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

// ---------------------------------------------------------------------------
// Processes and other users (hygiene tests)

/// Whether PID runs (and is not a zombie).
pub fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Gives `path` and everything under it to `uid`:`gid` (tests run as root).
pub fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for e in std::fs::read_dir(path).unwrap() {
            chown_tree(&e.unwrap().path(), uid, gid);
        }
    }
}

/// A connection made without blocking: None when the listen queue is full.
pub fn connect_nonblocking(path: &Path) -> Option<UnixStream> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
    use std::os::fd::AsRawFd;
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    let addr = UnixAddr::new(path).unwrap();
    connect(fd.as_raw_fd(), &addr).ok()?;
    Some(UnixStream::from(fd))
}

/// The system python3 (readable by every uid, unlike a venv under /root), running
/// `script` with `args`.
pub fn python(script: &str) -> Command {
    let mut c = Command::new("/usr/bin/python3");
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .args(["-c", script]);
    c
}
