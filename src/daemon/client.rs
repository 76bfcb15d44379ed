//! The client side: a blocking connection per request (no runtime on the hot path),
//! auto-starting the daemon when none answers, and the in-process fallback.

use std::io::{ErrorKind, Read, Write};

use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use zeroize::Zeroize;

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

use super::protocol::{Caller, CredentialsData, Envelope, NOT_FOUND, Request, Response, WireUid};
use crate::config::Store;
use crate::config::schema::Sensitive;
use crate::credentials::context::{self, SourceContext};
use crate::credentials::{Credentials, Engine, Identity, mfa, parse_time};
use crate::error::{Error, Kind, Result, display_path};

/// How a daemon the client starts is set up (the CLI's global flags, resolved).
#[derive(Debug, Clone)]
pub struct DaemonArgs {
    pub config_dir: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
    pub backlog: u32,
    pub cache_size: u32,
}

impl DaemonArgs {
    /// The arguments of `elhaz daemon run` that reproduce these settings.
    pub fn to_args(&self) -> Vec<std::ffi::OsString> {
        vec![
            "--config-dir".into(),
            self.config_dir.clone().into(),
            "--socket-path".into(),
            self.socket.clone().into(),
            "--logging-path".into(),
            self.log.clone().into(),
            "--max-unix-socket-connections".into(),
            self.backlog.to_string().into(),
            "--max-daemon-cache-size".into(),
            self.cache_size.to_string().into(),
            "daemon".into(),
            "run".into(),
        ]
    }
}

/// Why a request did not get an answer.
#[derive(Debug)]
pub enum Failure {
    /// Nothing listens on the socket (missing, or refused): a daemon may be started.
    NotRunning,
    /// Anything else.
    Error(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Error(e)
    }
}

/// One daemon socket.
#[derive(Debug, Clone)]
pub struct Client {
    pub socket: PathBuf,
    pub timeout: Duration,
    /// Whether the socket must be the user's own (or root's). True for the daemon's
    /// socket; false for a share, which belongs to whoever shared it.
    pub own_socket: bool,
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>, timeout: Duration) -> Self {
        Client {
            socket: socket.into(),
            timeout,
            own_socket: true,
        }
    }

    /// A client of a share socket (`export --socket`): its owner is whoever shared it,
    /// which may be another uid (`daemon share --uid`).
    pub fn shared(socket: impl Into<PathBuf>, timeout: Duration) -> Self {
        Client {
            own_socket: false,
            ..Client::new(socket, timeout)
        }
    }

    /// Refuses a socket, or a listener, that belongs to another user: whoever could
    /// place it would get the request (and an MFA code in it) and answer with keys of
    /// their choice. Checked on the file before connecting and on the listening
    /// process after, before anything is sent.
    fn check_owner(&self, uid: Option<u32>) -> Result<(), Failure> {
        let me = nix::unistd::geteuid().as_raw();
        let owner = match uid {
            Some(u) => u,
            None => match std::fs::symlink_metadata(&self.socket) {
                Ok(m) => std::os::unix::fs::MetadataExt::uid(&m),
                Err(_) => return Ok(()),
            },
        };
        if owner == me || owner == 0 {
            return Ok(());
        }
        let what = if uid.is_some() {
            format!(
                "the process listening on {} runs as uid {owner}",
                display_path(&self.socket)
            )
        } else {
            format!(
                "the socket {} belongs to uid {owner}",
                display_path(&self.socket)
            )
        };
        Err(Failure::Error(
            Error::daemon(format!(
                "{what}, not you (uid {me}): elhaz sends nothing to it"
            ))
            .with_hint(format!(
                "if you did not put it there, someone else did: remove it (rm {}) and keep --socket-path in a directory of your own",
                self.socket.display()
            )),
        ))
    }

    /// `add`: puts NAME in the daemon (with an MFA code, when given).
    pub fn add(
        &self,
        caller: Caller,
        name: &str,
        token: Option<&Sensitive>,
    ) -> Result<Response, Failure> {
        self.send(Envelope::new(
            caller,
            Request::Add {
                config: Some(name.to_string()),
                token_code: token.cloned(),
            },
        ))
    }

    /// `credentials` for NAME (None: whatever a shared socket serves).
    pub fn credentials(
        &self,
        caller: Caller,
        name: Option<&str>,
        min_remaining: i64,
    ) -> Result<Response, Failure> {
        self.send(Envelope::new(
            caller,
            Request::Credentials {
                config: name.map(str::to_string),
                autoadd: true,
                min_remaining_seconds: min_remaining,
            },
        ))
    }

    /// `refresh`: a forced refresh of NAME.
    pub fn refresh(&self, caller: Caller, name: &str) -> Result<Response, Failure> {
        let config = Some(name.to_string());
        self.send(Envelope::new(caller, Request::Refresh { config }))
    }

    /// `remove`: forgets NAME.
    pub fn remove(&self, name: &str) -> Result<Response, Failure> {
        let config = Some(name.to_string());
        self.send(Envelope::new(Caller::ext(), Request::Remove { config }))
    }

    /// `whoami`: GetCallerIdentity as NAME.
    pub fn whoami(&self, caller: Caller, name: &str) -> Result<Response, Failure> {
        let config = Some(name.to_string());
        self.send(Envelope::new(caller, Request::Whoami { config }))
    }

    /// `kill`: stops the daemon.
    pub fn kill(&self) -> Result<Response, Failure> {
        self.send(Envelope::new(Caller::default(), Request::Kill {}))
    }

    /// `status`: the daemon, its sessions and shares.
    pub fn status(&self) -> Result<Response, Failure> {
        self.send(Envelope::new(Caller::default(), Request::Status {}))
    }

    /// `share`: serves NAME on another socket.
    pub fn share(
        &self,
        caller: Caller,
        name: &str,
        socket: &Path,
        whoami: bool,
        uid: Option<u32>,
    ) -> Result<Response, Failure> {
        self.send(Envelope::new(
            caller,
            Request::Share {
                config: Some(name.to_string()),
                socket: Some(socket.to_path_buf()),
                whoami,
                uid: uid.map(WireUid::Id),
            },
        ))
    }

    /// `unshare`: closes the share on `socket`.
    pub fn unshare(&self, socket: &Path) -> Result<Response, Failure> {
        let socket = Some(socket.to_path_buf());
        self.send(Envelope::new(Caller::ext(), Request::Unshare { socket }))
    }

    /// Sends one request and reads the one answer.
    fn send(&self, req: Envelope) -> Result<Response, Failure> {
        if self.own_socket {
            self.check_owner(None)?;
        }
        let mut stream = match connect(&self.socket, self.timeout) {
            Ok(s) => s,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                return Err(Failure::NotRunning);
            }
            Err(e) => {
                let err = Error::io(
                    Kind::Daemon,
                    "cannot connect to the daemon at",
                    &self.socket,
                    &e,
                );
                return Err(Failure::Error(match e.kind() {
                    ErrorKind::NotADirectory => {
                        err.with_hint("fix --socket-path (or ELHAZ_SOCKET_PATH)")
                    }
                    _ if self.socket.as_os_str().len() >= 108 => {
                        Error::daemon(format!(
                            "the socket path {} is too long: Unix sockets take at most 107 bytes, it has {}",
                            display_path(&self.socket),
                            self.socket.as_os_str().len()
                        ))
                        .with_hint("use a shorter --socket-path (or ELHAZ_SOCKET_PATH), e.g. under $XDG_RUNTIME_DIR")
                    }
                    // A daemon so busy (or stopped) that its listen queue stays full.
                    ErrorKind::WouldBlock | ErrorKind::TimedOut => Error::daemon(format!(
                        "the daemon at {} did not accept the connection within {}s",
                        display_path(&self.socket),
                        self.timeout.as_secs()
                    ))
                    .with_hint("check it: elhaz daemon status; restart it: elhaz daemon stop"),
                    ErrorKind::PermissionDenied => err.with_hint(format!(
                        "the socket belongs to another user; check: ls -l {}",
                        self.socket.display()
                    )),
                    _ => err,
                }));
            }
        };
        let io = |e: std::io::Error| {
            let msg = if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
                format!(
                    "the daemon at {} did not answer within {}s",
                    display_path(&self.socket),
                    self.timeout.as_secs()
                )
            } else if matches!(
                e.kind(),
                ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
            ) {
                format!(
                    "the daemon at {} closed the connection without answering (did it stop?)",
                    display_path(&self.socket)
                )
            } else {
                format!(
                    "talking to the daemon at {}: {}",
                    display_path(&self.socket),
                    crate::error::io_reason(&e)
                )
            };
            Failure::Error(
                Error::daemon(msg)
                    .with_hint("check it: elhaz daemon status; its log: elhaz daemon logs"),
            )
        };
        if self.own_socket {
            let uid = crate::sys::peer_uid(&stream).map_err(io)?;
            self.check_owner(Some(uid))?;
        }
        let _ = stream.set_read_timeout(Some(self.timeout));
        let _ = stream.set_write_timeout(Some(self.timeout));
        // The request may hold an MFA code and the answer holds credentials: both
        // buffers are sized up front (no copies left by growing) and zeroized after.
        let mut line = req.to_line();
        let sent = stream.write_all(&line);
        line.zeroize();
        sent.map_err(io)?;
        let mut answer = zeroize::Zeroizing::new(Vec::with_capacity(8192));
        read_line(&mut stream, &mut answer).map_err(io)?;
        if answer.is_empty() {
            return Err(io(std::io::Error::from(ErrorKind::UnexpectedEof)));
        }
        let resp: Response = serde_json::from_slice(&answer).map_err(|e| {
            Failure::Error(Error::daemon(format!(
                "the daemon at {} sent an answer elhaz cannot read: {e}",
                display_path(&self.socket)
            )))
        })?;
        if resp.request_id != req.request_id {
            return Err(Failure::Error(Error::daemon(
                "the daemon answered another request (request_id differs)",
            )));
        }
        Ok(resp)
    }
}

/// Reads up to and including the first newline (or to the end), with no buffer of its
/// own beyond a zeroized chunk: nothing read is left in freed memory.
fn read_line(stream: &mut UnixStream, out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = zeroize::Zeroizing::new([0u8; 4096]);
    loop {
        let n = match stream.read(&mut chunk[..]) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(());
        }
        if let Some(i) = chunk[..n].iter().position(|&b| b == b'\n') {
            out.extend_from_slice(&chunk[..=i]);
            return Ok(());
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Connects with a timeout: a blocking connect to a Unix socket whose listen queue is
/// full waits up to SO_SNDTIMEO, which std cannot set before connecting.
fn connect(path: &Path, timeout: Duration) -> std::io::Result<UnixStream> {
    use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr, sockopt};
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let addr = UnixAddr::new(path)?;
    let tv = nix::sys::time::TimeVal::new(
        timeout.as_secs() as nix::libc::time_t,
        timeout.subsec_micros() as nix::libc::suseconds_t,
    );
    socket::setsockopt(&fd, sockopt::SendTimeout, &tv)?;
    socket::connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr)?;
    Ok(UnixStream::from(fd))
}

/// The error a failed response stands for.
pub fn response_error(resp: &Response) -> Error {
    resp.error()
}

/// Credentials as served to a command, with what the environment needs besides.
#[derive(Debug, Clone)]
pub struct Served {
    pub credentials: Credentials,
    pub region: Option<String>,
}

/// Where credentials come from: the daemon (started when needed), or this process.
pub enum Broker {
    Daemon {
        client: Client,
        start: Option<DaemonArgs>,
    },
    InProcess {
        engine: Engine,
    },
}

impl Broker {
    /// A broker on `socket`; `start` says how to start a daemon when none answers
    /// (None: never start one, e.g. for a shared socket).
    pub fn daemon(client: Client, start: Option<DaemonArgs>) -> Broker {
        Broker::Daemon { client, start }
    }

    pub fn in_process(store: Store) -> Broker {
        Broker::InProcess {
            engine: Engine::new(store, true),
        }
    }

    /// Who asks: our config directory, so a daemon reading another one says so
    /// instead of answering from the wrong configs, and this caller's source context,
    /// so the daemon answers with our sources and not its own.
    pub fn caller(&self) -> Caller {
        let mut caller = Caller::ext();
        if let Broker::Daemon {
            start: Some(args), ..
        } = self
        {
            caller.config_dir = std::path::absolute(&args.config_dir).ok();
            let ctx = SourceContext::caller();
            caller.context = Some(ctx.to_json());
            if !ctx.has_secrets() {
                caller.context_ref = context::caller_ref().map(str::to_string);
            }
        }
        caller
    }

    /// Sends a request (`ask` on the daemon's client), starting the daemon once if
    /// none answers.
    pub fn request(
        &self,
        action: &str,
        ask: impl Fn(&Client) -> Result<Response, Failure>,
    ) -> Result<Response> {
        let Broker::Daemon { client, start } = self else {
            return Err(Error::usage(format!(
                "{action} needs the daemon, and --no-daemon is set"
            )));
        };
        match ask(client) {
            Ok(r) => Ok(r),
            Err(Failure::Error(e)) => Err(e),
            Err(Failure::NotRunning) => {
                let Some(args) = start else {
                    return Err(not_running(&client.socket));
                };
                start_daemon(args, true)?;
                match ask(client) {
                    Ok(r) => Ok(r),
                    Err(Failure::Error(e)) => Err(e),
                    Err(Failure::NotRunning) => Err(not_running(&client.socket)),
                }
            }
        }
    }

    /// Credentials for NAME with at least `min_remaining` seconds left (capped by the
    /// policy at half the lifetime).
    pub fn credentials(&self, name: &str, min_remaining: i64) -> Result<Served> {
        self.credentials_inner(name, min_remaining)
            .map_err(explain_no_source_in_session)
    }

    fn credentials_inner(&self, name: &str, min_remaining: i64) -> Result<Served> {
        match self {
            Broker::InProcess { engine } => {
                let fetched =
                    runtime()?.block_on(engine.fetch(name, None, SourceContext::caller()))?;
                Ok(Served {
                    credentials: fetched.credentials,
                    region: fetched.region,
                })
            }
            Broker::Daemon { .. } => {
                // An empty name: a shared socket, which knows its session.
                let config = Some(name).filter(|n| !n.is_empty());
                let ask = |c: &Client| c.credentials(self.caller(), config, min_remaining);
                let mut resp = self.request("credentials", ask)?;
                // The original daemon ignores `autoadd` and answers 404 for a missing
                // session (ours never does with it): add it, as the original client
                // does, and ask again.
                if resp
                    .error
                    .as_ref()
                    .is_some_and(|e| e.code == NOT_FOUND && e.kind.is_none())
                {
                    match self.add(name, None) {
                        // 409: someone added it meanwhile.
                        Ok(()) => {}
                        Err(e) if e.kind == Kind::Usage => {}
                        Err(e) => return Err(e),
                    }
                    resp = self.request("credentials", ask)?;
                }
                if !resp.ok {
                    let err = response_error(&resp);
                    if err.kind == Kind::MfaRequired && self.add_with_mfa(name, &err)? {
                        return self.credentials_inner(name, min_remaining);
                    }
                    return Err(err);
                }
                let served = parse_credentials(resp.data.as_ref());
                resp.wipe();
                served
            }
        }
    }

    /// When the daemon needs an MFA code: asks on the terminal and re-adds the session
    /// with it. False when there is no terminal to ask on.
    fn add_with_mfa(&self, name: &str, err: &Error) -> Result<bool> {
        if std::fs::File::open("/dev/tty").is_err() {
            return Ok(false);
        }
        eprintln!("elhaz: {}", err.message);
        let code = mfa::code_from_tty(name)?;
        self.add(name, Some(&code))?;
        Ok(true)
    }

    /// `add`: puts NAME in the daemon (with an MFA code typed here, when given).
    pub fn add(&self, name: &str, token: Option<&Sensitive>) -> Result<()> {
        let resp = self.request("add", |c| c.add(self.caller(), name, token))?;
        if resp.ok {
            return Ok(());
        }
        let err = response_error(&resp);
        if err.kind == Kind::MfaRequired
            && token.is_none()
            && std::fs::File::open("/dev/tty").is_ok()
        {
            eprintln!("elhaz: {}", err.message);
            let code = mfa::code_from_tty(name)?;
            return self.add(name, Some(&code));
        }
        Err(err)
    }

    /// GetCallerIdentity as NAME.
    pub fn whoami(&self, name: &str) -> Result<Identity> {
        match self {
            Broker::InProcess { engine } => {
                let rt = runtime()?;
                let ctx = SourceContext::caller();
                let fetched = rt.block_on(engine.fetch(name, None, ctx))?;
                rt.block_on(engine.whoami(&fetched.credentials, &fetched.sts, ctx))
            }
            Broker::Daemon { .. } => {
                // Make sure the session is there (adds it, asks for MFA if needed).
                self.credentials(name, 0)?;
                let resp = self.request("whoami", |c| c.whoami(self.caller(), name))?;
                resp.into_data("whoami")
            }
        }
    }
}

/// Inside a session, "no source credentials" while the shell shows keys is puzzling:
/// say that those keys are the session's and never a source.
fn explain_no_source_in_session(mut err: Error) -> Error {
    if err.kind == Kind::Auth
        && err.message.starts_with("no source credentials found")
        && SourceContext::captured_in_session()
    {
        err.message.push_str(
            " (this shell is inside an elhaz session: the keys it holds are the session's, never a source)",
        );
        err.hint = Some(
            "run it where your own source is (outside the session, or a shell with the elhaz shell integration, which keeps your keys for elhaz); or export AWS_PROFILE=P"
                .into(),
        );
    }
    err
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::other(format!("cannot start a runtime: {e}")))
}

/// Reads the `credentials` data (ours or the original daemon's).
pub fn parse_credentials(data: Option<&Value>) -> Result<Served> {
    let bad = |what: &str| Error::daemon(format!("the daemon sent credentials without {what}"));
    let data = data.ok_or_else(|| bad("data"))?;
    let Ok(c) = CredentialsData::deserialize(data) else {
        let missing = ["expiry_time", "access_key", "secret_key", "token"]
            .into_iter()
            .find(|k| data.get(k).and_then(Value::as_str).is_none())
            .unwrap_or("data");
        return Err(bad(missing));
    };
    let expiry: OffsetDateTime = parse_time(&c.expiry_time).ok_or_else(|| {
        Error::daemon(format!(
            "the daemon sent a bad expiry_time {:?}",
            c.expiry_time
        ))
    })?;
    let now = crate::credentials::now();
    context::set_served_ref(c.context_ref.clone());
    // The original daemon does not send the lifetime: then count from now.
    let issued = match c.lifetime_seconds {
        Some(l) => expiry - time::Duration::seconds(l),
        None => now.min(expiry),
    };
    Ok(Served {
        credentials: Credentials::new(&c.access_key, &c.secret_key, &c.token, expiry, issued),
        region: c.region.clone(),
    })
}

fn not_running(socket: &Path) -> Error {
    Error::daemon(format!("no daemon is running on {}", display_path(socket)))
        .with_hint("start one: elhaz daemon start; or skip it: ELHAZ_NO_DAEMON=1")
}

/// Whether a daemon answers on `socket` (a connection is accepted).
pub fn is_running(socket: &Path) -> bool {
    UnixStream::connect(socket).is_ok()
}

/// Starts `elhaz daemon run` detached (new session, stdio on /dev/null) and waits up to
/// 5 s for its socket. `announce` prints the one line users see the first time.
pub fn start_daemon(args: &DaemonArgs, announce: bool) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| {
        Error::daemon(format!(
            "cannot find the elhaz binary to start the daemon: {e}"
        ))
    })?;
    // The daemon would refuse it: say why here, where the user sees it.
    let dir = super::server::socket_dir(&args.socket);
    if dir.exists() {
        super::server::check_socket_dir(dir)?;
        super::server::check_lock(&args.socket)?;
    }
    // A daemon whose socket was removed holds its lock until it notices (within
    // about a second) and exits: wait for that rather than fail.
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Some(pid) = super::server::lock_holder(&args.socket) {
        if is_running(&args.socket) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::daemon(format!(
                "a daemon (pid {pid}) holds the lock of {} but does not answer on it",
                display_path(&args.socket)
            ))
            .with_hint("stop it: elhaz daemon stop"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut cmd = std::process::Command::new(&exe);
    cmd.args(args.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // The daemon's own context (for clients that send none) is its starter's, spelled
    // out plainly: no ELHAZ_SOURCE_* carriers, nothing a session injected, and inside a
    // session no secret at all (they reached us as per-command assignments only).
    let caller = SourceContext::caller();
    for (i, var) in context::VARS.iter().enumerate() {
        cmd.env_remove(context::SOURCE_VARS[i]);
        match caller.get(var) {
            Some(_) if context::SECRET.contains(var) && SourceContext::captured_in_session() => {
                cmd.env_remove(var);
            }
            Some(v) => {
                cmd.env(var, v);
            }
            None => {
                cmd.env_remove(var);
            }
        }
    }
    // SAFETY: setsid and close_range are async-signal-safe; nothing else runs between
    // fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            // Only stdio reaches the daemon: a pipe the caller holds (`$(... 3>&1)`)
            // must not be kept open by it for its whole life.
            crate::sys::cloexec_from_3();
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::daemon(format!("cannot start the daemon ({}): {e}", exe.display())))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if is_running(&args.socket) {
            if announce {
                eprintln!(
                    "elhaz: started the daemon (socket {}, log {})",
                    display_path(&args.socket),
                    display_path(&args.log)
                );
            }
            // Reap it when it exits later: it runs in its own session.
            std::thread::spawn(move || child.wait());
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            // It lost the race to another daemon, which may still be binding.
            // (Then the winner holds the lock; nobody holding it means ours failed, and
            // waiting the full 5 s for a socket nobody will open helps no one.)
            if is_running(&args.socket)
                || (super::server::lock_is_held(&args.socket)
                    && wait_for_socket(&args.socket, deadline))
            {
                return Ok(());
            }
            // Its reason went to its stderr (/dev/null) when it could not open the log.
            let log = if args.log.is_file() {
                format!("; see its log: {}", display_path(&args.log))
            } else {
                String::new()
            };
            return Err(
                Error::daemon(format!("the daemon exited at once ({status}){log}")).with_hint(
                    "run it in the foreground, with the same flags, to see why: elhaz daemon run",
                ),
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(Error::daemon(format!(
        "the daemon did not open {} within 5s",
        display_path(&args.socket)
    ))
    .with_hint(format!("see its log: {}", display_path(&args.log))))
}

fn wait_for_socket(socket: &Path, deadline: Instant) -> bool {
    while Instant::now() < deadline {
        if is_running(socket) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}
