//! Whole-process benchmarks: `cargo bench --bench elhaz`. Starts its own fake STS and
//! daemon in a temp HOME and prints a table: medians with min and max, and ratios
//! against a baseline measured in the same run. ELHAZ_BENCH_SECS (default 10) sets
//! the length of each load run; ELHAZ_BENCH_SIM_SECS (default 120) the refresh
//! simulation; ELHAZ_BENCH_BASELINE=PATH times P1 in turns with another elhaz binary
//! (an older build, with its own daemon). Build the baseline the same way (`cargo bench
//! --no-run` on the older tree): a bench build unifies dev-dependency features, which
//! links half a megabyte more into the binary than `cargo build --release` does.

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use support::{FakeSts, TestEnv};

fn env_secs(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

fn stats(mut v: Vec<f64>) -> Stats {
    v.sort_by(|a, b| a.total_cmp(b));
    Stats {
        median: v[v.len() / 2],
        min: v[0],
        max: v[v.len() - 1],
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Wall time of `runs` whole-process runs of `cmd`, in ms.
fn time_runs(runs: usize, make: impl FnMut() -> Command) -> Stats {
    stats(samples(runs, make))
}

/// The wall times themselves, in ms.
fn samples(runs: usize, mut make: impl FnMut() -> Command) -> Vec<f64> {
    let mut v = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut c = make();
        c.stdout(Stdio::null()).stderr(Stdio::null());
        let t = Instant::now();
        let status = c.status().expect("spawn");
        v.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(status.success(), "benchmark command failed: {c:?}");
    }
    v
}

fn row(id: &str, what: &str, s: &Stats, base: Option<(&str, &Stats)>) {
    let mut line = format!(
        "{id:<3} {what:<44} median {:>8.3} ms  (min {:.3}, max {:.3})",
        s.median, s.min, s.max
    );
    if let Some((bname, b)) = base {
        line.push_str(&format!(
            "  | {bname} {:.3} ms: {:.2}x, +{:.3} ms",
            b.median,
            s.median / b.median,
            s.median - b.median
        ));
    }
    println!("{line}");
}

fn credentials_line(name: &str) -> Vec<u8> {
    let mut l = serde_json::to_vec(&serde_json::json!({
        "version": 1, "request_id": support::uuid(), "action": "credentials",
        "payload": {"config": name}
    }))
    .unwrap();
    l.push(b'\n');
    l
}

/// P4: `clients` threads each sending `credentials` requests for `secs` seconds.
fn load(socket: &std::path::Path, name: &str, clients: usize, secs: u64) -> (f64, f64, f64, usize) {
    let barrier = Arc::new(Barrier::new(clients));
    let deadline = Duration::from_secs(secs);
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let socket = socket.to_path_buf();
            let name = name.to_string();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let line = credentials_line(&name);
                let mut lat = Vec::new();
                let mut errors = 0usize;
                barrier.wait();
                let start = Instant::now();
                while start.elapsed() < deadline {
                    let t = Instant::now();
                    let ok = (|| -> std::io::Result<bool> {
                        let mut s = UnixStream::connect(&socket)?;
                        s.write_all(&line)?;
                        let mut out = String::new();
                        BufReader::new(s).read_line(&mut out)?;
                        Ok(out.contains("\"ok\":true"))
                    })()
                    .unwrap_or(false);
                    if ok {
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    } else {
                        errors += 1;
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (l, e) = h.join().unwrap();
        all.extend(l);
        errors += e;
    }
    all.sort_by(|a, b| a.total_cmp(b));
    let rps = all.len() as f64 / secs as f64;
    (rps, percentile(&all, 0.5), percentile(&all, 0.99), errors)
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Per-call cost of the fresh-prompt hook in a real shell: whole-process wall time
/// with N calls minus with 0 calls, divided by N.
fn hook_cost(t: &TestEnv, shell: &str, n: usize) -> Option<(f64, f64)> {
    let far = support::unix_now() + 3600;
    let script = |count: usize| match shell {
        "bash" => format!(
            "eval \"$(elhaz hook bash)\"; export ELHAZ_SESSION=x ELHAZ_EXPIRES_AT={far} ELHAZ_REFRESH_AT={far}; for ((i=0;i<{count};i++)); do _elhaz_hook; done"
        ),
        "zsh" => format!(
            "eval \"$(elhaz hook zsh)\"; export ELHAZ_SESSION=x ELHAZ_EXPIRES_AT={far} ELHAZ_REFRESH_AT={far}; for ((i=0;i<{count};i++)); do _elhaz_hook; done"
        ),
        _ => format!(
            "elhaz hook fish | source; set -gx ELHAZ_SESSION x; set -gx ELHAZ_EXPIRES_AT {far}; set -gx ELHAZ_REFRESH_AT {far}; for i in (seq {count}); _elhaz_hook; end"
        ),
    };
    let argv = |count: usize| -> Vec<String> {
        match shell {
            "bash" => vec!["--norc".into(), "-c".into(), script(count)],
            "zsh" => vec!["-f".into(), "-c".into(), script(count)],
            _ => vec!["--no-config".into(), "-c".into(), script(count)],
        }
    };
    support::which_on_path(shell)?;
    let mut with = Vec::new();
    let mut without = Vec::new();
    for _ in 0..5 {
        let mut c = t.program(shell);
        c.args(argv(n)).stdout(Stdio::null()).stderr(Stdio::null());
        let s = Instant::now();
        c.status().ok()?;
        with.push(s.elapsed().as_secs_f64());
        let mut c = t.program(shell);
        c.args(argv(0)).stdout(Stdio::null()).stderr(Stdio::null());
        let s = Instant::now();
        c.status().ok()?;
        without.push(s.elapsed().as_secs_f64());
    }
    let per_call_us = (stats(with).median - stats(without).median) / n as f64 * 1e6;
    // Forks per fresh prompt: strace the same scripts with 200 and 0 calls.
    let forks = support::which_on_path("strace").map(|strace| {
        let count = |calls: usize| -> usize {
            let out = t.dir.path().join(format!("strace-{shell}-{calls}"));
            let mut c = t.program(&strace);
            c.args(["-f", "-e", "trace=execve,clone,clone3,fork,vfork", "-o"])
                .arg(&out)
                .arg(shell)
                .args(argv(calls))
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = c.status();
            std::fs::read_to_string(&out)
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.contains("resumed") && !l.contains("+++") && !l.contains("---"))
                .count()
        };
        (count(200) as f64 - count(0) as f64) / 200.0
    });
    Some((per_call_us, forks.unwrap_or(f64::NAN)))
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this with no flag and
    // only wants it to build.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let secs = env_secs("ELHAZ_BENCH_SECS", 10);
    let sim_secs = env_secs("ELHAZ_BENCH_SIM_SECS", 120);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sts = rt.block_on(FakeSts::start(Duration::from_secs(3600)));
    let mut t = TestEnv::with_sts(&sts.uri());
    let bin_dir = support::bin().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), t.vars["PATH"]);
    t.set("PATH", &path);
    t.set("ELHAZ_MAX_DAEMON_CACHE_SIZE", "200");
    // ELHAZ_BENCH_LOG: the daemon's log filter, to see what logging costs.
    if let Ok(filter) = std::env::var("ELHAZ_BENCH_LOG") {
        t.set("ELHAZ_LOG", &filter);
    }
    t.role_config("prod", "");
    t.start_daemon();
    t.cmd().args(["export", "prod"]).assert().success();
    let elhaz = support::bin();

    println!(
        "elhaz benchmarks ({} runs per whole-process figure; load runs {secs} s)",
        50
    );
    println!();
    let base_true = time_runs(50, || t.program("true"));
    let p1 = time_runs(50, || {
        let mut c = t.program(&elhaz);
        c.args(["export", "prod", "-f", "env"]);
        c
    });
    row(
        "P1",
        "elhaz export prod -f env (warm daemon)",
        &p1,
        Some(("true", &base_true)),
    );

    // ELHAZ_BENCH_BASELINE=PATH: another elhaz binary (an older build) with its own
    // daemon, timed in turns with this one so both see the same machine.
    if let Ok(base_bin) = std::env::var("ELHAZ_BENCH_BASELINE") {
        let mut t0 = TestEnv::with_sts(&sts.uri());
        t0.set("PATH", &path);
        t0.role_config("prod", "");
        for args in [&["daemon", "start"][..], &["export", "prod"][..]] {
            let ok = t0.program(&base_bin).args(args).status().unwrap().success();
            assert!(ok, "baseline {base_bin}: {args:?} failed");
        }
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..10 {
            ours.extend(samples(20, || {
                let mut c = t.program(&elhaz);
                c.args(["export", "prod", "-f", "env"]);
                c
            }));
            theirs.extend(samples(20, || {
                let mut c = t0.program(&base_bin);
                c.args(["export", "prod", "-f", "env"]);
                c
            }));
        }
        row(
            "P1",
            "the same, 200 runs in turns with the baseline",
            &stats(ours),
            Some(("baseline", &stats(theirs))),
        );
    }

    for shell in ["bash", "zsh", "fish"] {
        match hook_cost(&t, shell, 10_000) {
            Some((us, forks)) => println!(
                "P2  hook when fresh, {shell:<5}                          {us:>8.2} µs per prompt  (10,000 calls, whole process minus empty run); processes per prompt: {forks:.2}"
            ),
            None => println!("P2  hook when fresh, {shell:<5}: {shell} not installed"),
        }
    }

    let p3 = time_runs(50, || {
        let mut c = t.program(&elhaz);
        c.args(["exec", "prod", "--", "true"]);
        c
    });
    row(
        "P3",
        "elhaz exec prod -- true",
        &p3,
        Some(("true", &base_true)),
    );

    for clients in [1usize, 8, 64] {
        let (rps, p50, p99, errors) = load(&t.socket(), "prod", clients, secs);
        println!(
            "P4  daemon, {clients:>2} concurrent clients                  {rps:>9.0} req/s  p50 {p50:.3} ms  p99 {p99:.3} ms  errors {errors}"
        );
    }

    // P5a: 100 concurrent cold requests for one config: AssumeRole calls.
    t.role_config("cold", "");
    let before = sts.state.issued.load(Ordering::SeqCst);
    let barrier = Arc::new(Barrier::new(100));
    let handles: Vec<_> = (0..100)
        .map(|_| {
            let socket = t.socket();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let line = String::from_utf8(
                    serde_json::to_vec(&serde_json::json!({
                        "version": 1, "request_id": support::uuid(), "action": "credentials",
                        "payload": {"config": "cold", "autoadd": true}
                    }))
                    .unwrap(),
                )
                .unwrap();
                barrier.wait();
                support::raw_request(&socket, &line).contains("\"ok\":true")
            })
        })
        .collect();
    let ok = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|&b| b)
        .count();
    let calls = sts.state.issued.load(Ordering::SeqCst) - before;
    println!(
        "P5a 100 concurrent cold requests, one config         {calls} AssumeRole call(s), {ok}/100 answered"
    );

    // P5b: 20 shells' hooks polling a session with short credentials.
    let lifetime = 60u64;
    sts.set_lifetime(Duration::from_secs(lifetime));
    t.role_config("sim", "");
    let before = sts.state.issued.load(Ordering::SeqCst);
    let start = Instant::now();
    let shells: Vec<_> = (0..20)
        .map(|_| {
            let vars = t.vars.clone();
            let elhaz = elhaz.clone();
            std::thread::spawn(move || {
                let mut refresh_at = 0i64;
                while start.elapsed() < Duration::from_secs(sim_secs) {
                    if support::unix_now() >= refresh_at {
                        let out = Command::new(&elhaz)
                            .env_clear()
                            .envs(&vars)
                            .args(["export", "sim", "-f", "env", "--shell", "bash"])
                            .output()
                            .unwrap();
                        let text = String::from_utf8_lossy(&out.stdout);
                        refresh_at = text
                            .lines()
                            .find_map(|l| l.strip_prefix("export ELHAZ_REFRESH_AT='"))
                            .and_then(|v| v.trim_end_matches("';").parse().ok())
                            .unwrap_or(support::unix_now() + 60);
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            })
        })
        .collect();
    for s in shells {
        s.join().unwrap();
    }
    let calls = sts.state.issued.load(Ordering::SeqCst) - before;
    let advisory = (lifetime / 2).min(900);
    let bound = sim_secs.div_ceil(lifetime - advisory);
    // The first call is the cold fetch; the rest are refreshes, at most one per
    // L − A (A with its up-to-10 % jitter: one per L − 1.1·A).
    let refreshes = calls.saturating_sub(1);
    let jittered = (advisory as f64 * 1.1) as u64;
    println!(
        "P5b 20 hooks polling for {sim_secs} s, L = {lifetime} s, A = {advisory} s   {calls} AssumeRole call(s): 1 cold + {refreshes} refresh(es); bound ceil({sim_secs}/(L-A)) = {bound}, with jitter ceil({sim_secs}/(L-1.1A)) = {}; for 1 h credentials that is {} per hour",
        sim_secs.div_ceil(lifetime - jittered),
        3600u64.div_ceil(3600 - 990)
    );

    // P6: RSS with 100 sessions, against the daemon's RSS with the few above.
    sts.set_lifetime(Duration::from_secs(3600));
    let pid = t.daemon_pid().expect("daemon pid");
    let base_rss = rss_kb(pid);
    for i in 0..100 {
        t.role_config(&format!("s{i:03}"), "");
        let v = t.request("add", serde_json::json!({"config": format!("s{i:03}")}));
        assert_eq!(v["ok"], true, "{v}");
    }
    println!(
        "P6  daemon RSS with 100 sessions                    {:.1} MB (VmRSS of pid {pid}; {:.1} MB with 3 sessions)",
        rss_kb(pid) as f64 / 1024.0,
        base_rss as f64 / 1024.0
    );

    // P7: to a ready interactive bash, against a plain bash -i.
    if support::which_on_path("bash").is_some() {
        let plain = time_runs(20, || {
            let mut c = t.program("bash");
            c.args(["-i", "-c", "exit"]).stdin(Stdio::null());
            c
        });
        let shell = time_runs(20, || {
            let mut c = t.program(&elhaz);
            c.args(["shell", "prod", "--shell", "bash", "--", "-c", "exit"])
                .stdin(Stdio::null());
            c
        });
        row(
            "P7",
            "elhaz shell prod (bash, -c exit)",
            &shell,
            Some(("bash -i", &plain)),
        );
    }
    t.stop_daemon();
}
