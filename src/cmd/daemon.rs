//! `elhaz daemon start|run|stop|kill|status|list|add|remove|logs|refresh`.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::{Context, print_json};
use crate::cli::{DaemonCommand, LogsArgs};
use crate::credentials::Engine;
use crate::daemon::cache::Cache;
use crate::daemon::client::{Failure, as_map, is_running, response_error, start_daemon};
use crate::daemon::server::{ServerOptions, lock_is_held, serve, take_lock};
use crate::duration::human;
use crate::error::{Error, Kind, Result, display_path};

pub fn run(cmd: DaemonCommand, ctx: &Context) -> Result<i32> {
    let socket = &ctx.paths.socket;
    match cmd {
        DaemonCommand::Run => run_foreground(ctx),
        DaemonCommand::Start => {
            if is_running(socket) {
                eprintln!(
                    "elhaz: the daemon is already running (socket {})",
                    display_path(socket)
                );
                return Ok(0);
            }
            start_daemon(&ctx.daemon_args(), false)?;
            eprintln!(
                "elhaz: daemon started (socket {}, log {})",
                display_path(socket),
                display_path(&ctx.paths.log)
            );
            Ok(0)
        }
        DaemonCommand::Stop | DaemonCommand::Kill => {
            match ctx.client().request("kill", Map::new()) {
                Ok(_) => {}
                Err(Failure::NotRunning) => {
                    eprintln!("elhaz: no daemon is running on {}", display_path(socket));
                    return Ok(0);
                }
                Err(Failure::Error(e)) => return Err(e),
            }
            // Wait for it to let go of the socket and of its lock (it finishes in-flight
            // requests first, 10 s at most), so a start right after works.
            let deadline = Instant::now() + Duration::from_secs(15);
            while (socket.exists() || lock_is_held(socket)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            eprintln!("elhaz: daemon stopped");
            Ok(0)
        }
        DaemonCommand::Status(a) => match ctx.client().request("status", Map::new()) {
            Ok(resp) if resp.ok => {
                let mut data = resp.data.unwrap_or(Value::Null);
                if a.json {
                    // The same `running` key as the not-running form.
                    if let Some(m) = data.as_object_mut() {
                        m.insert("running".into(), Value::Bool(true));
                    }
                    print_json(&data);
                } else {
                    println!(
                        "running: pid {}, up {}, {} session(s), socket {}",
                        data["pid"],
                        human(data["uptime_seconds"].as_i64().unwrap_or(0))
                            .replace("expired", "0s"),
                        data["sessions"].as_array().map_or(0, Vec::len),
                        display_path(socket)
                    );
                    print_sessions(&data["sessions"]);
                    print_shares(&data["shares"]);
                }
                Ok(0)
            }
            Ok(resp) => Err(response_error(&resp)),
            Err(Failure::NotRunning) => {
                if a.json {
                    print_json(
                        &json!({ "running": false, "socket": socket.display().to_string() }),
                    );
                } else {
                    println!("not running (socket {})", display_path(socket));
                }
                Ok(1)
            }
            Err(Failure::Error(e)) => Err(e),
        },
        DaemonCommand::List(a) => {
            // Listing never starts a daemon: none running means no sessions.
            let resp = match ctx.client().request("status", Map::new()) {
                Ok(r) => r,
                Err(Failure::NotRunning) => {
                    if a.json {
                        print_json(&json!([]));
                    } else {
                        eprintln!(
                            "elhaz: no daemon is running on {}, so no sessions",
                            display_path(socket)
                        );
                    }
                    return Ok(0);
                }
                Err(Failure::Error(e)) => return Err(e),
            };
            if !resp.ok {
                return Err(response_error(&resp));
            }
            let data = resp.data.unwrap_or(Value::Null);
            if a.json {
                print_json(&data["sessions"]);
            } else if data["sessions"].as_array().is_none_or(Vec::is_empty) {
                eprintln!("elhaz: no sessions in the daemon; add one: elhaz daemon add NAME");
            } else {
                print_sessions(&data["sessions"]);
            }
            Ok(0)
        }
        DaemonCommand::Add(a) => {
            let name = ctx.name(a.name.get())?;
            ctx.broker().add(&name, None)?;
            eprintln!("elhaz: added {name}");
            Ok(0)
        }
        DaemonCommand::Remove(a) => {
            let name = ctx.name(a.name.get())?;
            // Removing never starts a daemon.
            let resp = ctx
                .client()
                .request("remove", as_map(json!({ "config": name, "ext": true })))
                .map_err(|f| match f {
                    Failure::NotRunning => Error::daemon(format!(
                        "no daemon is running on {}, so {name} is in none",
                        display_path(socket)
                    )),
                    Failure::Error(e) => e,
                })?;
            if !resp.ok {
                return Err(response_error(&resp));
            }
            eprintln!("elhaz: removed {name} from the daemon");
            Ok(0)
        }
        DaemonCommand::Refresh(a) => {
            let name = ctx.name(a.name.get())?;
            let broker = ctx.broker();
            let resp = broker.request(
                "refresh",
                broker.payload(json!({ "config": name, "ext": true })),
            )?;
            if !resp.ok {
                return Err(response_error(&resp));
            }
            let expiry = resp
                .data
                .as_ref()
                .and_then(|d| d["expiry_time"].as_str())
                .unwrap_or("?");
            eprintln!("elhaz: refreshed {name} (expires {expiry})");
            Ok(0)
        }
        DaemonCommand::Logs(a) => logs(&a, ctx),
        DaemonCommand::Share(a) => {
            let name = ctx.name(a.name.get())?;
            let socket = absolute(&a.socket)?;
            let mut payload =
                json!({ "config": name, "socket": socket, "whoami": a.whoami, "ext": true });
            if let Some(uid) = a.uid {
                payload["uid"] = json!(uid);
            }
            let broker = ctx.broker();
            let resp = broker.request("share", broker.payload(payload))?;
            if !resp.ok {
                return Err(response_error(&resp));
            }
            eprintln!(
                "elhaz: sharing {name} (credentials{}) on {}{}",
                if a.whoami { " and whoami" } else { "" },
                display_path(&socket),
                a.uid
                    .map(|u| format!(" for uid {u} too"))
                    .unwrap_or_default()
            );
            eprintln!(
                "in the sandbox: credential_process = elhaz export --socket {} -f credential-process",
                socket.display()
            );
            Ok(0)
        }
        DaemonCommand::Unshare(a) => {
            let socket = absolute(&a.socket)?;
            let resp = ctx
                .client()
                .request("unshare", as_map(json!({ "socket": socket, "ext": true })))
                .map_err(|f| match f {
                    Failure::NotRunning => Error::daemon(format!(
                        "no daemon is running on {}; its shares ended with it",
                        display_path(&ctx.paths.socket)
                    )),
                    Failure::Error(e) => e,
                })?;
            if !resp.ok {
                return Err(response_error(&resp));
            }
            eprintln!("elhaz: closed the share {}", display_path(&socket));
            Ok(0)
        }
    }
}

/// A path made absolute against the current directory (the daemon's differs).
fn absolute(p: &std::path::Path) -> Result<std::path::PathBuf> {
    std::path::absolute(p)
        .map_err(|e| Error::usage(format!("bad socket path {}: {e}", p.display())))
}

fn print_shares(shares: &Value) {
    for s in shares.as_array().into_iter().flatten() {
        let mut line = format!(
            "share {}  {}",
            s["socket"].as_str().unwrap_or_default(),
            s["config"].as_str().unwrap_or_default()
        );
        if s["whoami"] == json!(true) {
            line.push_str("  +whoami");
        }
        if let Some(uid) = s["uid"].as_u64() {
            line.push_str(&format!("  uid {uid}"));
        }
        println!("{line}");
    }
}

fn print_sessions(sessions: &Value) {
    let Some(list) = sessions.as_array() else {
        return;
    };
    let width = list
        .iter()
        .filter_map(|s| s["name"].as_str())
        .map(str::len)
        .max()
        .unwrap_or(0);
    for s in list {
        let name = s["name"].as_str().unwrap_or_default();
        let left = s["remaining_seconds"].as_i64().unwrap_or(0);
        let mut line = format!(
            "{name:<width$}  {}",
            if left > 0 {
                format!("{} left", human(left))
            } else {
                "expired".into()
            }
        );
        // One name fetched from several source contexts: say which is which.
        if list.iter().filter(|o| o["name"] == s["name"]).count() > 1 {
            let context = s["context"].as_str().unwrap_or("?");
            match s["aws_profile"].as_str() {
                Some(p) => line.push_str(&format!("  (AWS_PROFILE {p}, context {context})")),
                None => line.push_str(&format!("  (context {context})")),
            }
        }
        if let Some(e) = s["last_error"].as_str() {
            line.push_str(&format!("  (last refresh failed: {e})"));
        }
        println!("{line}");
    }
}

/// `daemon run`: the daemon in the foreground.
fn run_foreground(ctx: &Context) -> Result<i32> {
    let _lock = take_lock(&ctx.paths.socket)?;
    let _guard = crate::logging::init_daemon(&ctx.paths.log, ctx.global.verbose)?;
    let engine = Engine::new(ctx.store(), false);
    let cache = Cache::new(
        engine,
        ctx.policy,
        ctx.global.max_daemon_cache_size as usize,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::daemon(format!("cannot start the runtime: {e}")))?;
    let result = runtime.block_on(serve(ServerOptions {
        socket: ctx.paths.socket.clone(),
        backlog: ctx.global.max_unix_socket_connections,
        cache,
    }));
    if let Err(e) = &result {
        tracing::error!(error = %e.message, "daemon failed");
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    result.map(|_| 0)
}

fn logs(a: &LogsArgs, ctx: &Context) -> Result<i32> {
    let path = &ctx.paths.log;
    let file = std::fs::File::open(path).map_err(|e| {
        let err = Error::io(Kind::Daemon, "cannot read the daemon log", path, &e);
        if e.kind() == std::io::ErrorKind::NotFound {
            err.with_hint("the daemon has not run with this log path yet: elhaz daemon start")
        } else {
            err
        }
    })?;
    let lines = BufReader::new(file)
        .lines()
        .map_while(std::result::Result::ok);
    match a.head {
        Some(n) => lines.take(n).for_each(|l| println!("{l}")),
        None => {
            let n = a.tail.unwrap_or(50);
            let mut ring = std::collections::VecDeque::with_capacity(n.min(10_000));
            for l in lines {
                if ring.len() == n {
                    ring.pop_front();
                }
                if n > 0 {
                    ring.push_back(l);
                }
            }
            ring.iter().for_each(|l| println!("{l}"));
        }
    }
    Ok(0)
}
