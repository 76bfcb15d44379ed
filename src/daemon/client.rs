//! The transport: a blocking connection per request (no runtime on the hot path), one
//! method per protocol action, and the checks that the socket and its listener are the
//! user's own. Knows nothing of the terminal, of starting the daemon or of the engine.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use zeroize::Zeroize;

use super::protocol::{Caller, Envelope, MAX_ANSWER, Request, Response, WireUid};
use crate::error::{Error, Kind, Result, display_path};
use crate::sensitive::Sensitive;

/// The hint of a daemon that does not answer as it should.
const ASK_THE_DAEMON: &str = "check it: elhaz daemon status; its log: elhaz daemon logs";

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

    /// What a failed connect means, and what fixes it.
    fn connect_failure(&self, e: &std::io::Error) -> Failure {
        let err = Error::io(
            Kind::Daemon,
            "cannot connect to the daemon at",
            &self.socket,
            e,
        );
        Failure::Error(match e.kind() {
            ErrorKind::NotADirectory => err.with_hint("fix --socket-path (or ELHAZ_SOCKET_PATH)"),
            _ if self.socket.as_os_str().len() >= 108 => Error::daemon(format!(
                "the socket path {} is too long: Unix sockets take at most 107 bytes, it has {}",
                display_path(&self.socket),
                self.socket.as_os_str().len()
            ))
            .with_hint(
                "use a shorter --socket-path (or ELHAZ_SOCKET_PATH), e.g. under $XDG_RUNTIME_DIR",
            ),
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
        })
    }

    /// What a failure while sending or reading means.
    fn io_failure(&self, e: &std::io::Error) -> Failure {
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
                crate::error::io_reason(e)
            )
        };
        Failure::Error(Error::daemon(msg).with_hint(ASK_THE_DAEMON))
    }

    /// Sends one request and reads the one answer, all of it within the client's
    /// time-out (connecting, sending and reading together) and at most
    /// [`MAX_ANSWER`] bytes of it: the other end of a share socket may be anyone's.
    fn send(&self, req: Envelope) -> Result<Response, Failure> {
        // A time-out of 0 is none, as SO_SNDTIMEO and SO_RCVTIMEO take it.
        let deadline = (!self.timeout.is_zero()).then(|| Instant::now() + self.timeout);
        if self.own_socket {
            self.check_owner(None)?;
        }
        let mut stream = match connect(&self.socket, self.timeout) {
            Ok(s) => s,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                return Err(Failure::NotRunning);
            }
            Err(e) => return Err(self.connect_failure(&e)),
        };
        let io = |e: std::io::Error| self.io_failure(&e);
        if self.own_socket {
            let uid = crate::sys::peer_uid(&stream).map_err(io)?;
            self.check_owner(Some(uid))?;
        }
        // The request may hold an MFA code and the answer holds credentials: both
        // buffers are zeroized after, and the answer's is wiped as it grows.
        let mut line = req.to_line();
        let sent = write_all(&mut stream, &line, deadline);
        line.zeroize();
        sent.map_err(io)?;
        let mut answer = zeroize::Zeroizing::new(Vec::with_capacity(8192));
        match read_line(&mut stream, &mut answer, MAX_ANSWER, deadline) {
            Ok(()) => {}
            Err(Stop::Io(e)) => return Err(io(e)),
            Err(Stop::TooLong) => {
                return Err(Failure::Error(
                    Error::daemon(format!(
                        "the daemon at {} sent an answer longer than {} MiB: elhaz stopped reading it",
                        display_path(&self.socket),
                        MAX_ANSWER >> 20
                    ))
                    .with_hint(ASK_THE_DAEMON),
                ));
            }
        }
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

/// Why reading an answer stopped.
enum Stop {
    Io(std::io::Error),
    /// More than the limit, and no newline yet.
    TooLong,
}

/// The time left until `deadline` (None: no deadline, no time-out); a time-out error
/// once it has passed.
fn remaining(deadline: Option<Instant>) -> std::io::Result<Option<Duration>> {
    let Some(deadline) = deadline else {
        return Ok(None);
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(std::io::Error::from(ErrorKind::TimedOut));
    }
    Ok(Some(left))
}

/// Writes all of `buf` before `deadline` (not a time-out per write: a peer that reads
/// a byte at a time gets no more time for it).
fn write_all(
    stream: &mut UnixStream,
    mut buf: &[u8],
    deadline: Option<Instant>,
) -> std::io::Result<()> {
    while !buf.is_empty() {
        stream.set_write_timeout(remaining(deadline)?)?;
        match stream.write(buf) {
            Ok(0) => return Err(std::io::Error::from(ErrorKind::WriteZero)),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads up to and including the first newline (or to the end), at most `limit` bytes
/// before it and all before `deadline`: a peer that sends without end, or a byte at a
/// time, is stopped. Nothing read is left in freed memory: the chunk is zeroized, and
/// `out` is moved to a larger buffer by hand, its old one wiped.
fn read_line(
    stream: &mut UnixStream,
    out: &mut zeroize::Zeroizing<Vec<u8>>,
    limit: usize,
    deadline: Option<Instant>,
) -> Result<(), Stop> {
    let mut chunk = zeroize::Zeroizing::new([0u8; 4096]);
    loop {
        let wait = remaining(deadline).map_err(Stop::Io)?;
        stream.set_read_timeout(wait).map_err(Stop::Io)?;
        let n = match stream.read(&mut chunk[..]) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(Stop::Io(e)),
        };
        if n == 0 {
            return Ok(());
        }
        let (take, done) = match chunk[..n].iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (n, false),
        };
        // The newline is not counted: an answer of exactly `limit` bytes is read.
        if out.len() + take - usize::from(done) > limit {
            return Err(Stop::TooLong);
        }
        if out.len() + take > out.capacity() {
            let mut bigger =
                Vec::with_capacity((out.len() + take).max(out.capacity() * 2).min(limit + 1));
            bigger.extend_from_slice(out);
            out.zeroize();
            **out = bigger;
        }
        out.extend_from_slice(&chunk[..take]);
        if done {
            return Ok(());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `read_line` on what a peer sent (and then closed).
    fn read(sent: &[u8], limit: usize) -> Result<Vec<u8>, Stop> {
        let (mut ours, mut theirs) = UnixStream::pair().unwrap();
        theirs.write_all(sent).unwrap();
        drop(theirs);
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(2));
        let deadline = Instant::now() + Duration::from_secs(5);
        read_line(&mut ours, &mut out, limit, Some(deadline)).map(|()| out.to_vec())
    }

    #[test]
    fn an_answer_is_read_up_to_the_limit_and_no_further() {
        assert_eq!(read(b"abc\nrest", 3).ok().unwrap(), b"abc\n");
        assert_eq!(read(b"abc", 3).ok().unwrap(), b"abc");
        assert!(matches!(read(b"abcd\n", 3), Err(Stop::TooLong)));
        // Grown by hand, many times over, from a buffer of two bytes.
        let long = [vec![b'x'; 100_000], b"\n".to_vec()].concat();
        assert_eq!(read(&long, 100_000).ok().unwrap(), long);
    }

    #[test]
    fn the_deadline_is_for_the_whole_answer() {
        let (mut ours, _theirs) = UnixStream::pair().unwrap();
        let mut out = zeroize::Zeroizing::new(Vec::new());
        let past = Instant::now() - Duration::from_millis(1);
        match read_line(&mut ours, &mut out, 10, Some(past)) {
            Err(Stop::Io(e)) => assert_eq!(e.kind(), ErrorKind::TimedOut),
            _ => panic!("read past the deadline"),
        }
    }
}
