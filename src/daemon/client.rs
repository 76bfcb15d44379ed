//! The transport: a blocking connection per request (no runtime on the hot path), one
//! method per protocol action, and the checks that the socket and its listener are the
//! user's own. Knows nothing of the terminal, of starting the daemon or of the engine.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroize;

use super::protocol::{Caller, Envelope, Request, Response, WireUid};
use crate::error::{Error, Kind, Result, display_path};
use crate::sensitive::Sensitive;

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

    /// `forget`: drops the sessions that came from the SSO login at `start_url` (all
    /// SSO logins when None).
    pub fn forget_sso(&self, start_url: Option<&str>) -> Result<Response, Failure> {
        self.send(Envelope::new(
            Caller::ext(),
            Request::Forget {
                sso_start_url: start_url.map(str::to_string),
            },
        ))
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
