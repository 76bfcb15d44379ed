//! Remote hosts: a share forwarded over OpenSSH with `ssh -R REMOTE:LOCAL`, the way
//! ssh-agent forwarding works. A real, private sshd on loopback (its own host key,
//! config and port; never the system's) logs in a test user whose HOME is the remote
//! host. There the aws CLI, through `elhaz export --socket`, gets the role that the
//! laptop's daemon shares: the laptop is this test's user, with a fake STS.

use std::fs::File;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::support::*;
use serde_json::Value;

const HOUR: Duration = Duration::from_secs(3600);
const SSHD: &str = "/usr/sbin/sshd";
/// The user sshd logs in: its HOME is the remote host.
const REMOTE_USER: &str = "elhaz-remote";
/// The source key of the laptop user (`TestEnv::with_sts`).
const SOURCE_KEY: &str = "AKIASOURCEKEY0000000";
/// What the server side needs for exactly this, and nothing more (README, "Remote
/// hosts and devcontainers"): remote forwarding only, of Unix sockets only, with the
/// previous session's socket file replaced.
const DOCUMENTED: &str = "\
StreamLocalBindUnlink yes
AllowTcpForwarding remote
PermitListen none
";

/// The remote user, created once, with a fresh `.elhaz` and `.aws` in its HOME. Held
/// for the whole test: one test at a time uses that HOME, in this process and in any
/// other that runs these tests.
struct Remote {
    uid: u32,
    gid: u32,
    home: PathBuf,
    _turn: MutexGuard<'static, ()>,
    _lock: File,
}

impl Remote {
    /// The private sshd and its test user (needs root: see `needs_root`).
    fn take() -> Remote {
        needs_root();
        static TURN: Mutex<()> = Mutex::new(());
        let turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
        let lock = File::create(std::env::temp_dir().join("elhaz-remote-tests.lock")).unwrap();
        lock.lock().unwrap();
        if nix::unistd::User::from_name(REMOTE_USER).unwrap().is_none() {
            // The password field is `*`, not `!`: sshd refuses a locked account even
            // for key logins. Another process may create the user at the same time;
            // what matters is that it exists afterwards.
            let _ = Command::new("useradd")
                .args(["--create-home", "--shell", "/bin/sh", "--password", "*"])
                .args(["--comment", "elhaz ssh forwarding tests", REMOTE_USER])
                .status();
        }
        let user = nix::unistd::User::from_name(REMOTE_USER)
            .unwrap()
            .unwrap_or_else(|| panic!("useradd could not create the test user {REMOTE_USER}"));
        let (uid, gid) = (user.uid.as_raw(), user.gid.as_raw());
        let home = user.dir;
        std::fs::create_dir_all(&home).unwrap();
        std::os::unix::fs::chown(&home, Some(uid), Some(gid)).unwrap();
        for d in [".elhaz", ".aws"] {
            let p = home.join(d);
            match std::fs::remove_dir_all(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("cannot remove {}: {e}", p.display()),
            }
            std::fs::create_dir(&p).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        }
        Remote {
            uid,
            gid,
            home,
            _turn: turn,
            _lock: lock,
        }
    }

    /// Writes `~/.aws/config` of the remote user.
    fn aws_config(&self, text: &str) {
        let p = self.home.join(".aws/config");
        std::fs::write(&p, text).unwrap();
        std::os::unix::fs::chown(&p, Some(self.uid), Some(self.gid)).unwrap();
    }
}

/// A private sshd on a free loopback port, killed when dropped.
struct Sshd {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Sshd {
    /// Starts sshd with its own host key and `settings` (sshd_config lines) in a new
    /// directory under the test's temp dir, letting in REMOTE_USER with the key
    /// `client_key(t)`.
    fn start(t: &TestEnv, name: &str, settings: &str) -> Sshd {
        let dir = t.dir.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        keygen(&dir.join("host_key"));
        // Read by sshd as the remote user: every directory down to it is traversable.
        let keys = dir.join("authorized_keys");
        std::fs::copy(client_key(t).with_extension("pub"), &keys).unwrap();
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).unwrap();
        traversable(t, &dir);
        // The privilege separation directory, which a machine whose ssh service never
        // started has not got.
        if !Path::new("/run/sshd").is_dir() {
            std::fs::create_dir_all("/run/sshd").unwrap();
            std::fs::set_permissions("/run/sshd", std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let port = free_port();
        let config = dir.join("sshd_config");
        // StrictModes no: the keys file lies under /tmp, which everyone may write to.
        std::fs::write(
            &config,
            format!(
                "Port {port}\n\
                 ListenAddress 127.0.0.1\n\
                 HostKey {dir}/host_key\n\
                 PidFile {dir}/sshd.pid\n\
                 AuthorizedKeysFile {dir}/authorized_keys\n\
                 AllowUsers {REMOTE_USER}\n\
                 UsePAM no\n\
                 StrictModes no\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 PrintMotd no\n\
                 PrintLastLog no\n\
                 {settings}",
                dir = dir.display()
            ),
        )
        .unwrap();
        let log = File::create(dir.join("sshd.log")).unwrap();
        let mut cmd = Command::new(SSHD);
        cmd.args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot run {SSHD} ({e}): install openssh-server (.ci/deps does)")
        });
        let listening = wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                || child.try_wait().unwrap().is_some()
        });
        let sshd = Sshd { child, port, dir };
        assert!(
            listening && sshd.child_running(),
            "sshd did not listen on {port}: {}",
            sshd.log()
        );
        sshd
    }

    fn child_running(&self) -> bool {
        pid_alive(self.child.id())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// `ssh [-R FORWARD] REMOTE_USER@127.0.0.1 COMMAND` as the laptop user, run to its
    /// end: (exit code, stdout, stderr).
    fn ssh(&self, t: &TestEnv, forward: Option<&str>, command: &str) -> (i32, String, String) {
        let mut c = t.program("ssh");
        c.args(["-F", "/dev/null", "-p", &self.port.to_string(), "-i"])
            .arg(client_key(t))
            .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"])
            .args(["-o", "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR"])
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                self.dir.join("known_hosts").display()
            ))
            .args(["-o", "ExitOnForwardFailure=yes"]);
        if let Some(f) = forward {
            c.args(["-R", f]);
        }
        c.arg(format!("{REMOTE_USER}@127.0.0.1"))
            .arg(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let (status, out, err) = output_within(c.spawn().unwrap(), Duration::from_secs(60));
        let status = status.unwrap_or_else(|| panic!("ssh did not end within 60s: {command}"));
        (status.code().unwrap_or(-1), out, err)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new ed25519 key without a passphrase at `path` (and `path.pub`).
fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "elhaz-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen (openssh-client) is needed: .ci/deps installs it");
    assert!(st.success(), "ssh-keygen failed for {}", path.display());
}

/// The laptop user's ssh key, made on first use.
fn client_key(t: &TestEnv) -> PathBuf {
    let p = t.dir.path().join("client_key");
    if !p.exists() {
        keygen(&p);
    }
    p
}

/// The PATH of the remote user's commands: the elhaz binary under test, and the aws
/// CLI of the CI venv.
fn remote_path(t: &TestEnv, remote: &Remote) -> String {
    let dir = t.dir.path().join("bin");
    std::fs::create_dir(&dir).unwrap();
    traversable(t, &dir);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A link, not a copy (the test binary is large); a copy across file systems.
    if std::fs::hard_link(bin(), dir.join("elhaz")).is_err() {
        std::fs::copy(bin(), dir.join("elhaz")).unwrap();
    }
    let aws = which_on_path("aws").expect("the aws CLI is needed: .ci/deps installs it");
    let venv_bin = aws.parent().unwrap();
    // The checkout (and so the venv) may be out of the remote user's reach, under a
    // 0700 home, and the venv's python may be too (a python built under /root). The
    // system python runs the same CLI from the venv's packages, linked (not copied:
    // they weigh hundreds of MB) into the test's own traversable directory.
    let site = std::fs::read_dir(venv_bin.with_file_name("lib"))
        .unwrap()
        .map(|e| e.unwrap().path().join("site-packages"))
        .find(|p| p.is_dir())
        .expect("no site-packages in the venv");
    let linked = dir.join("site-packages");
    let cp = |flags: &str| {
        Command::new("cp")
            .arg(flags)
            .arg(&site)
            .arg(&linked)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !cp("-al") {
        let _ = std::fs::remove_dir_all(&linked);
        assert!(cp("-a"), "cannot copy {} for {REMOTE_USER}", site.display());
    }
    // New directories only: the files are the venv's own (hard links), already 0644.
    let _ = Command::new("find")
        .arg(&linked)
        .args(["-type", "d", "-exec", "chmod", "755", "{}", "+"])
        .status();
    std::fs::copy(&aws, dir.join("aws.py")).unwrap();
    let wrapper = dir.join("aws");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nPYTHONPATH='{}' exec /usr/bin/python3 '{}' \"$@\"\n",
            linked.display(),
            dir.join("aws.py").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(
        runs_as(remote, &wrapper),
        "{REMOTE_USER} cannot run the aws CLI with /usr/bin/python3 from {}",
        linked.display()
    );
    format!("{}:/usr/bin:/bin", dir.display())
}

/// Whether the remote user can run `program --version`.
fn runs_as(remote: &Remote, program: &Path) -> bool {
    let mut c = Command::new(program);
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    as_user(&mut c, remote.uid, remote.gid);
    c.status().is_ok_and(|s| s.success())
}

fn identity(out: &str) -> Value {
    serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("not get-caller-identity JSON ({e}): {out:?}"))
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root: a private sshd and a test user; .ci/check runs it as root"]
async fn the_aws_cli_on_a_remote_host_gets_the_shared_role_through_ssh_forwarding() {
    let remote = Remote::take();
    let (sts, t) = TestEnv::with_role(HOUR).await;
    let sshd = Sshd::start(&t, "sshd", DOCUMENTED);
    let path = remote_path(&t, &remote);

    // On the laptop: share prod, and forward its socket to the remote host's HOME.
    let local = t.home.join(".elhaz/prod.sock");
    share(&t, "prod", &local, &[]);
    let forwarded = remote.home.join(".elhaz/laptop.sock");
    let forward = format!("{}:{}", forwarded.display(), local.display());
    // On the remote host: an AWS profile whose credential_process asks that socket,
    // written as the README writes it (`~`, which no shell expands there).
    remote.aws_config(
        "[profile laptop]\n\
         credential_process = elhaz export --socket ~/.elhaz/laptop.sock -f credential-process\n\
         region = us-east-1\n",
    );
    let aws = format!(
        "PATH={path} AWS_ENDPOINT_URL_STS={} AWS_EC2_METADATA_DISABLED=true \
         aws sts get-caller-identity --profile laptop --output json",
        sts.uri()
    );

    let (code, out, err) = sshd.ssh(&t, Some(&forward), &aws);
    assert_eq!(
        code,
        0,
        "the remote aws CLI failed: {out}{err}\nsshd: {}",
        sshd.log()
    );
    let who = identity(&out);
    assert_eq!(
        who["Arn"], "arn:aws:sts::123456789012:assumed-role/Admin/fake",
        "{who}"
    );
    // Who signed what: the laptop's source key assumed the role, once, and the remote
    // call was signed with exactly the session key the laptop's daemon holds for prod.
    assert_eq!(sts.signers("AssumeRole").await, [SOURCE_KEY]);
    assert_eq!(sts.calls("AssumeRole").await[0]["RoleArn"], ROLE_ARN);
    let laptop = run(&t, &["export", "prod", "-f", "json"]);
    assert!(laptop.status.success(), "{}", text(&laptop.stderr));
    let laptop: Value = serde_json::from_slice(&laptop.stdout).unwrap();
    let session_key = laptop["access_key"].as_str().unwrap().to_string();
    assert!(session_key.starts_with("ASIA"), "{laptop}");
    assert_eq!(
        sts.signers("GetCallerIdentity").await,
        [session_key.as_str()]
    );

    // The socket sshd made is the remote user's alone (and root's), and it stays on the
    // remote host after the session; the next session replaces it
    // (StreamLocalBindUnlink) and is served the same cached session.
    let left = std::fs::symlink_metadata(&forwarded).unwrap_or_else(|e| {
        panic!(
            "sshd removed {} at the end of the session ({e}): this test no longer shows \
             why StreamLocalBindUnlink is needed",
            forwarded.display()
        )
    });
    assert!(left.file_type().is_socket(), "{left:?}");
    assert_eq!(left.mode() & 0o777, 0o600, "{left:?}");
    assert_eq!(left.uid(), remote.uid, "{left:?}");
    let (code, out, err) = sshd.ssh(&t, Some(&forward), &aws);
    assert_eq!(
        code,
        0,
        "a second ssh -R to the same path failed: {out}{err}\nsshd: {}",
        sshd.log()
    );
    assert_eq!(identity(&out)["Arn"], who["Arn"]);
    assert_eq!(sts.signers("AssumeRole").await, [SOURCE_KEY]);
    assert_eq!(
        sts.signers("GetCallerIdentity").await,
        [session_key.as_str(), session_key.as_str()]
    );

    // Logged in without the forward: nothing serves the socket, and elhaz says why.
    let (code, out, err) = sshd.ssh(
        &t,
        None,
        &format!(
            "PATH={path} elhaz export --socket {} -f credential-process",
            forwarded.display()
        ),
    );
    assert_eq!(code, 4, "{out}{err}");
    assert_eq!(
        out, "",
        "nothing for a credential_process caller to misread"
    );
    assert_eq!(
        err,
        "elhaz: nothing serves the shared socket ~/.elhaz/laptop.sock\n\
         hint: share a session on it, outside the sandbox: elhaz daemon share NAME --socket \
         PATH (or the ssh session that forwarded it has ended: run ssh -R again)\n"
    );
}

#[test]
#[ignore = "needs root: a private sshd and a test user; .ci/check runs it as root"]
fn the_documented_sshd_settings_forward_a_unix_socket_and_no_tcp_port() {
    let remote = Remote::take();
    let t = TestEnv::new();
    let forwarded = remote.home.join(".elhaz/laptop.sock");
    let unix = format!(
        "{}:{}",
        forwarded.display(),
        t.dir.path().join("prod.sock").display()
    );
    let tcp = format!("{}:127.0.0.1:{}", free_port(), free_port());

    // AllowTcpForwarding remote with PermitListen none: the socket, and no port.
    let sshd = Sshd::start(&t, "documented", DOCUMENTED);
    let (code, out, err) = sshd.ssh(&t, Some(&unix), "test -S ~/.elhaz/laptop.sock");
    assert_eq!(code, 0, "{out}{err}\nsshd: {}", sshd.log());
    let (code, out, err) = sshd.ssh(&t, Some(&tcp), "true");
    assert_eq!(code, 255, "a TCP port was forwarded: {out}{err}");
    assert!(
        err.contains("remote port forwarding failed for listen port"),
        "{err}"
    );

    // AllowTcpForwarding no refuses the socket too.
    let refusing = Sshd::start(
        &t,
        "no-tcp",
        "StreamLocalBindUnlink yes\nAllowTcpForwarding no\n",
    );
    let (code, out, err) = refusing.ssh(&t, Some(&unix), "true");
    assert_eq!(
        code, 255,
        "AllowTcpForwarding no let the socket through: {out}{err}"
    );
    assert!(
        err.contains("remote port forwarding failed for listen path"),
        "{err}"
    );
}
