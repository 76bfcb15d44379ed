//! One interactive program under a pseudo-terminal, as a user runs a shell: spawn it,
//! read with a deadline, wait for text (as written, or as the screen shows it), type,
//! and fail with the end of what the terminal showed.

use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use expectrl::Expect;
use expectrl::session::OsSession;

use super::text::terminal_text;

pub struct Pty {
    pub s: OsSession,
    /// Read and not yet consumed by expect.
    pub buf: String,
    /// Everything read, for failure messages.
    pub transcript: String,
    pub what: String,
    /// How long to wait for any one thing the program prints.
    pub timeout: Duration,
    /// Commands tagged so far (see the shell tests' `run`).
    pub n: usize,
}

impl Pty {
    /// Spawns `cmd` in a terminal `cols` wide; `what` names it in failure messages.
    pub fn spawn(cmd: Command, what: &str, cols: u16, timeout: Duration) -> Pty {
        let mut s = OsSession::spawn(cmd).expect("spawn in a pty");
        let _ = s.get_process_mut().set_window_size(cols, 50);
        Pty {
            s,
            buf: String::new(),
            transcript: String::new(),
            what: what.to_string(),
            timeout,
            n: 0,
        }
    }

    /// Reads what arrives within `wait`; false at end of file.
    pub fn fill(&mut self, wait: Duration) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.s.get_stream().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, wait.as_millis().min(60_000) as i32) };
        if n <= 0 {
            return true;
        }
        let mut chunk = [0u8; 16384];
        match self.s.try_read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                let text = String::from_utf8_lossy(&chunk[..n]);
                self.buf.push_str(&text);
                self.transcript.push_str(&text);
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
            // EIO: the program closed the terminal.
            Err(_) => false,
        }
    }

    pub fn fail(&self, msg: &str) -> ! {
        let t = &self.transcript;
        let start = t.len().saturating_sub(5000);
        let start = (start..t.len())
            .find(|i| t.is_char_boundary(*i))
            .unwrap_or(t.len());
        panic!(
            "{}: {msg}\n----- terminal (last 5000 bytes) -----\n{}\n-----",
            self.what,
            t[start..].escape_debug()
        );
    }

    /// Waits for `needle` in the output as written; returns what came before it (raw).
    pub fn expect(&mut self, needle: &str) -> String {
        let timeout = self.timeout;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.buf.find(needle) {
                let before = self.buf[..i].to_string();
                self.buf.drain(..i + needle.len());
                return before;
            }
            let now = Instant::now();
            if now >= deadline {
                self.fail(&format!("no {needle:?} within {timeout:?}"));
            }
            if !self.fill((deadline - now).min(Duration::from_millis(200))) {
                self.fail(&format!("the terminal closed while waiting for {needle:?}"));
            }
        }
    }

    /// Waits until the screen (see `screen`) shows `needle`; keeps only the screen
    /// text after it.
    pub fn expect_screen(&mut self, needle: &str) {
        let deadline = Instant::now() + self.timeout;
        loop {
            let shown = screen(&self.buf);
            if let Some(i) = shown.find(needle) {
                // Keep only what came after the match.
                let rest = shown[i + needle.len()..].to_string();
                self.buf = rest;
                return;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("the screen never showed {needle:?}"));
            }
            self.fill(Duration::from_millis(100));
        }
    }

    /// Everything shown during `wait`, as the screen shows it.
    pub fn collect(&mut self, wait: Duration) -> String {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            self.fill(Duration::from_millis(50));
        }
        screen(&std::mem::take(&mut self.buf))
    }

    /// Reads until the program has been quiet for 300 ms (at most 10 s).
    pub fn settle(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let before = self.transcript.len();
            self.fill(Duration::from_millis(300));
            if self.transcript.len() == before {
                return;
            }
        }
    }

    pub fn send(&mut self, text: &str) {
        self.s.send(text).unwrap();
    }

    /// Reads until the program closes the terminal, then waits for it: its exit code,
    /// or 128 + N when signal N ended it (as a shell reports it).
    pub fn wait_exit(&mut self) -> i32 {
        use expectrl::process::unix::WaitStatus;
        let deadline = Instant::now() + self.timeout;
        while self.fill(Duration::from_millis(200)) {
            if Instant::now() >= deadline {
                self.fail("the program did not end");
            }
        }
        match self.s.get_process_mut().wait() {
            Ok(WaitStatus::Exited(_, code)) => code,
            Ok(WaitStatus::Signaled(_, sig, _)) => 128 + sig as i32,
            other => self.fail(&format!("cannot wait for the program: {other:?}")),
        }
    }

    /// Types `line` and Enter.
    pub fn send_line(&mut self, line: &str) {
        self.s.send(line).unwrap();
        self.s.send("\r").unwrap();
    }
}

/// Terminal output as a screen shows it: escape sequences and carriage returns become
/// spaces.
pub fn screen(raw: &str) -> String {
    terminal_text(raw, Some(' '))
}
