//! moto: a real STS implementation, one server per test process, started on first use.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::env::{free_port, test_path, wait_until, which_in};
use super::procs::die_with_parent;

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
