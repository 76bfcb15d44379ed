//! Serving HTTP on a loopback TCP port, which every local user can reach: the
//! `--server` credentials endpoint and `sso login`'s PKCE redirect listener. This
//! module owns who gets a connection (at most [`MAX_CONNECTIONS`]; past that, a new
//! connection closes the oldest idle one), how long a connection may take to send its
//! request head, and an accept loop that outlives a shortage of descriptors. What a
//! request gets is the caller's handler; this module never looks at one.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::net::{TcpListener, TcpStream};

/// Open connections at most: past this, a new connection closes the oldest idle one,
/// so idle connections held open by another local user cannot lock out the one
/// client the listener is for (the child's SDK, the user's browser).
pub(crate) const MAX_CONNECTIONS: usize = 64;

/// A new connection that has not sent a whole request head within this is closed.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// After the first request, a kept-alive connection may wait this long for its next
/// request head. Longer than HEADER_READ_TIMEOUT: an SDK that polls every few seconds
/// reuses its connection, and a server closing it at the same moment fails the poll.
pub(crate) const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the accept loop waits before it tries again after a failed accept.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// One open connection: whether a request is in flight, and how to close it.
struct Open {
    id: u64,
    busy: Arc<AtomicBool>,
    abort: tokio::task::AbortHandle,
}

/// The open connections, oldest first.
#[derive(Default)]
struct Connections {
    open: Mutex<VecDeque<Open>>,
    next_id: AtomicU64,
}

impl Connections {
    fn open(&self) -> MutexGuard<'_, VecDeque<Open>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes the oldest connection with no request in flight, if any.
    fn close_oldest_idle(open: &mut VecDeque<Open>) -> bool {
        let Some(pos) = open.iter().position(|o| !o.busy.load(Ordering::SeqCst)) else {
            return false;
        };
        if let Some(oldest) = open.remove(pos) {
            oldest.abort.abort();
        }
        true
    }

    fn forget(&self, id: u64) {
        self.open().retain(|o| o.id != id);
    }
}

/// Removes its connection from the table when the connection's task ends or is
/// aborted.
struct Forget(Arc<Connections>, u64);

impl Drop for Forget {
    fn drop(&mut self) {
        self.0.forget(self.1);
    }
}

/// Marks its connection busy while a request is being answered.
struct Busy(Arc<AtomicBool>);

impl Busy {
    fn new(flag: &Arc<AtomicBool>) -> Busy {
        flag.store(true, Ordering::SeqCst);
        Busy(flag.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Accepts connections on `listener` and answers each request with `handler` (given
/// the request and the peer's address), until the future is dropped. Connections
/// already open then end by themselves, at their time-outs at the latest.
pub(crate) async fn serve<H, F>(listener: TcpListener, what: &'static str, handler: H)
where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let connections = Arc::new(Connections::default());
    let mut failing = false;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                failing = false;
                admit(&connections, stream, peer, handler.clone());
            }
            Err(e) => {
                accept_failed(&connections, what, &e, &mut failing);
                tokio::time::sleep(ACCEPT_RETRY).await;
            }
        }
    }
}

/// A failed accept: the loop goes on. Out of descriptors (EMFILE, ENFILE), the
/// connection waits in the listen queue; the oldest idle connection is closed to give
/// it a descriptor. The first failure of a run is logged, the rest only at debug.
fn accept_failed(connections: &Connections, what: &str, e: &std::io::Error, failing: &mut bool) {
    let out_of_descriptors = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
    if out_of_descriptors {
        Connections::close_oldest_idle(&mut connections.open());
    }
    if *failing {
        tracing::debug!(error = %e, "{what}: accept failed again");
    } else {
        tracing::warn!(error = %e, "{what}: accept failed; trying again");
        *failing = true;
    }
}

/// Serves one accepted connection in a task of its own, closing the oldest idle one
/// first when all slots are taken.
fn admit<H, F>(connections: &Arc<Connections>, stream: TcpStream, peer: SocketAddr, handler: H)
where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let id = connections.next_id.fetch_add(1, Ordering::SeqCst);
    let busy = Arc::new(AtomicBool::new(false));
    let forget = Forget(connections.clone(), id);
    // The table is locked across the spawn, so a connection that ends at once is
    // forgotten after it is recorded, never before.
    let mut open = connections.open();
    if open.len() >= MAX_CONNECTIONS {
        Connections::close_oldest_idle(&mut open);
    }
    let task = tokio::spawn(connection(stream, peer, handler, busy.clone(), forget));
    open.push_back(Open {
        id,
        busy,
        abort: task.abort_handle(),
    });
}

/// One connection: HTTP/1 requests answered by `handler`. It is closed when its first
/// request head has not arrived within [`HEADER_READ_TIMEOUT`], or a later one within
/// [`KEEP_ALIVE_TIMEOUT`].
async fn connection<H, F>(
    stream: TcpStream,
    peer: SocketAddr,
    handler: H,
    busy: Arc<AtomicBool>,
    forget: Forget,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let _forget = forget;
    let served = Arc::new(AtomicBool::new(false));
    let seen = served.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        seen.store(true, Ordering::SeqCst);
        let busy = Busy::new(&busy);
        let answer = handler(req, peer);
        async move {
            let _busy = busy;
            Ok::<_, Infallible>(answer.await)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(KEEP_ALIVE_TIMEOUT)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    let first_head = async {
        tokio::time::sleep(HEADER_READ_TIMEOUT).await;
        if served.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = conn => {}
        _ = first_head => {}
    }
}
