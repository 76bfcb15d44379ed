//! Role discovery of a large organisation: `cargo bench --bench sso`. One fake IAM
//! Identity Center portal (tests/support/sso_portal.rs) with N accounts of three roles,
//! a token-bucket limit of 20 calls a second (429 above it) and 80 ms per answer, as a
//! real portal takes; then, in the same run, `elhaz sso roles` (at ELHAZ_SSO_RATE=20)
//! and `aws-sso-util roles` against it, with the same token in the same cache
//! directory. The floor is what the limit allows: calls ÷ 20 a second. Last, the
//! second `elhaz sso roles`, from the cached listing (median of 20 whole processes).
//!
//! aws-sso-util is found on PATH or in ELHAZ_BENCH_SSO_UTIL; to install it:
//! `python3 -m venv /tmp/ssoutil && /tmp/ssoutil/bin/pip install aws-sso-util`.
//! ELHAZ_BENCH_SSO_SIZES (default `200,1000`) sets the account counts.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::sso_portal::{FakePortal, sso_user, write_token};
use support::which_on_path;

const RATE: f64 = 20.0;
const ROLES: &[&str] = &["AdministratorAccess", "Billing", "ReadOnly"];
const START_URL: &str = "https://corp.awsapps.com/start";

fn sso_util() -> PathBuf {
    std::env::var_os("ELHAZ_BENCH_SSO_UTIL")
        .map(PathBuf::from)
        .or_else(|| which_on_path("aws-sso-util"))
        .unwrap_or_else(|| {
            eprintln!(
                "aws-sso-util not found: set ELHAZ_BENCH_SSO_UTIL, or install it:\n  python3 -m venv /tmp/ssoutil && /tmp/ssoutil/bin/pip install aws-sso-util"
            );
            std::process::exit(2)
        })
}

/// Runs `c` once: (seconds, lines on stdout), or the failure as it was.
fn timed(mut c: Command) -> Result<(f64, usize), String> {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let t = Instant::now();
    let out = c.output().expect("spawn");
    let secs = t.elapsed().as_secs_f64();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(format!("failed after {secs:.1} s: {}", last.trim()));
    }
    Ok((secs, String::from_utf8_lossy(&out.stdout).lines().count()))
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let util = sso_util();
    let sizes: Vec<usize> = std::env::var("ELHAZ_BENCH_SSO_SIZES")
        .unwrap_or_else(|_| "200,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let portal = rt.block_on(FakePortal::start(&[]));
    portal.delay_all(Duration::from_millis(80));
    let mut t = sso_user(&portal.uri(), 8 * 3600);
    t.set("ELHAZ_NO_SPINNER", "1");
    t.set("ELHAZ_SSO_RATE", &format!("{RATE}"));
    // aws-sso-util finds its token by the start URL's hash, in the same directory.
    write_token(&t, START_URL, 8 * 3600);

    println!(
        "portal: {RATE}/s token bucket (burst 5), 80 ms an answer, 100 accounts a page, {} roles an account",
        ROLES.len()
    );
    for &n in &sizes {
        portal.many(n, ROLES, 100);
        let calls = n.div_ceil(100) + n;
        let floor = calls as f64 / RATE;
        println!(
            "\n{n} accounts, {} roles: {calls} portal calls, floor {floor:.1} s",
            n * 3
        );

        portal.limit(RATE, 5.0);
        let before = portal.counts();
        let mut c = t.std_cmd();
        c.args(["sso", "roles", "corp", "--refresh", "--json"]);
        let ours = timed(c);
        let after = portal.counts();
        match &ours {
            Ok((s, _)) => println!(
                "  elhaz sso roles        {s:7.2} s  {:.2}x the floor  ({} calls answered, {} throttled)",
                s / floor,
                after.0 - before.0,
                after.1 - before.1
            ),
            Err(e) => println!("  elhaz sso roles        {e}"),
        }

        portal.limit(RATE, 5.0);
        let before = portal.counts();
        let mut c = t.program(&util);
        c.args([
            "roles",
            "--sso-start-url",
            START_URL,
            "--sso-region",
            "eu-west-1",
            "--no-header",
        ]);
        let theirs = timed(c);
        let after = portal.counts();
        match (&theirs, &ours) {
            (Ok((s, rows)), Ok((o, _))) => println!(
                "  aws-sso-util roles     {s:7.2} s  {:.2}x the floor  ({} calls answered, {} throttled, {rows} rows)  | elhaz {:.1}x faster",
                s / floor,
                after.0 - before.0,
                after.1 - before.1,
                s / o
            ),
            (Ok((s, rows)), Err(_)) => println!(
                "  aws-sso-util roles     {s:7.2} s  {:.2}x the floor  ({rows} rows)",
                s / floor
            ),
            (Err(e), _) => println!(
                "  aws-sso-util roles     {e}  ({} calls answered, {} throttled)",
                after.0 - before.0,
                after.1 - before.1
            ),
        }
    }

    // The second run: the cached listing, no portal call.
    let before = portal.counts();
    let mut v: Vec<f64> = (0..20)
        .map(|_| {
            let mut c = t.std_cmd();
            c.args(["sso", "roles", "corp", "--json"]);
            timed(c).expect("cached sso roles").0 * 1000.0
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    println!(
        "\ncached: elhaz sso roles  median {:.1} ms (min {:.1}, max {:.1}) over 20 runs, {} portal calls",
        v[10],
        v[0],
        v[19],
        portal.counts().0 - before.0
    );
}
