//! What kubectl pays per call for its EKS token: `cargo bench --bench eks`. One fake
//! STS (which counts AssumeRole calls), one warm daemon and one fake EKS API server
//! (tests/support/fake_eks.py, checking every token); then, in the same run, the
//! plugin alone (`elhaz eks token` against `aws eks get-token`, with `elhaz export` as
//! the floor) and `kubectl get --raw /version` with each as its exec plugin. Medians
//! with min and max of whole processes. ELHAZ_BENCH_KUBECTL_RUNS (default 100) sets
//! the kubectl calls per plugin, ELHAZ_BENCH_AWS_RUNS (default 20) the `aws` runs
//! alone.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::eks::{FakeEks, kubectl, venv_python};
use support::{FakeSts, TestEnv};

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

fn env_usize(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Wall times of `runs` runs of what `make` builds, in ms; each must succeed.
fn time_runs(runs: usize, mut make: impl FnMut() -> Command) -> Stats {
    let mut v = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut c = make();
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        let t = Instant::now();
        let out = c.output().expect("spawn");
        v.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(
            out.status.success(),
            "benchmark command failed: {c:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Stats {
        median: v[v.len() / 2],
        min: v[0],
        max: v[v.len() - 1],
    }
}

fn row(id: &str, what: &str, s: &Stats, base: Option<(&str, &Stats)>) {
    let mut line = format!(
        "{id:<3} {what:<52} median {:>9.3} ms  (min {:.3}, max {:.3})",
        s.median, s.min, s.max
    );
    if let Some((name, b)) = base {
        line.push_str(&format!(
            "  | {name} {:.3} ms: {:.1}x faster, {:+.3} ms",
            b.median,
            b.median / s.median,
            s.median - b.median
        ));
    }
    println!("{line}");
}

/// A kubeconfig reaching `eks` whose user runs `command args` as its exec plugin.
fn kubeconfig(t: &TestEnv, eks: &FakeEks, file: &str, command: &Path, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| format!("\"{a}\"")).collect();
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: demo
  cluster: {{server: {}, certificate-authority: {}}}
users:
- name: me
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: {}
      args: [{}]
      interactiveMode: Never
contexts:
- name: here
  context: {{cluster: demo, user: me}}
current-context: here
",
        eks.server(),
        eks.ca().display(),
        command.display(),
        args.join(", ")
    );
    let path = t.dir.path().join(file);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let kubectl_runs = env_usize("ELHAZ_BENCH_KUBECTL_RUNS", 100);
    let aws_runs = env_usize("ELHAZ_BENCH_AWS_RUNS", 20);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sts = rt.block_on(FakeSts::start(Duration::from_secs(3600)));
    let mut t = TestEnv::with_sts(&sts.uri());
    t.set("ELHAZ_NO_SPINNER", "1");
    t.role_config("prod", "");
    t.start_daemon();
    let elhaz = support::bin();
    let export = t.cmd().args(["export", "prod"]).output().unwrap();
    let session: serde_json::Value = serde_json::from_slice(&export.stdout).unwrap();
    let key = session["access_key"].as_str().unwrap().to_string();
    let secret = session["secret_key"].as_str().unwrap().to_string();
    let eks = FakeEks::start(&t, "demo", &sts.uri(), &[(key.clone(), secret.clone())]);
    // `aws eks get-token` signs with the same session, for the same STS endpoint.
    let aws = venv_python().with_file_name("aws");
    let aws_env = |c: &mut Command| {
        c.env("AWS_ACCESS_KEY_ID", &key)
            .env("AWS_SECRET_ACCESS_KEY", &secret)
            .env("AWS_SESSION_TOKEN", session["token"].as_str().unwrap())
            .env("AWS_DEFAULT_REGION", "us-east-1");
    };
    let ours = kubeconfig(
        &t,
        &eks,
        "kc-elhaz",
        &elhaz,
        &["eks", "token", "prod", "--cluster", "demo"],
    );
    let theirs = kubeconfig(
        &t,
        &eks,
        "kc-aws",
        &aws,
        &["eks", "get-token", "--cluster-name", "demo"],
    );

    println!(
        "EKS token benchmarks (whole processes; kubectl {kubectl_runs} calls per plugin, aws alone {aws_runs} runs)"
    );
    println!();
    let token = || {
        let mut c = t.program(&elhaz);
        c.args(["eks", "token", "prod", "--cluster", "demo"]);
        c
    };
    let get_token = || {
        let mut c = t.program(&aws);
        aws_env(&mut c);
        c.args(["eks", "get-token", "--cluster-name", "demo"]);
        c
    };
    // Warm: the daemon's session, the page cache, Python's bytecode.
    time_runs(5, token);
    time_runs(2, get_token);
    let floor = time_runs(200, || {
        let mut c = t.program(&elhaz);
        c.args(["export", "prod"]);
        c
    });
    let e1 = time_runs(200, token);
    let a1 = time_runs(aws_runs, get_token);
    row(
        "E0",
        "elhaz export prod (the floor: a daemon round trip)",
        &floor,
        None,
    );
    row(
        "E1",
        "elhaz eks token prod --cluster demo",
        &e1,
        Some(("aws eks get-token", &a1)),
    );
    row("A1", "aws eks get-token --cluster-name demo", &a1, None);
    println!(
        "    eks token - export: {:+.3} ms",
        e1.median - floor.median
    );

    let calls = |file: &str, with_aws: bool| {
        let file = file.to_string();
        let t = &t;
        move || {
            let mut c = kubectl(t, Path::new(&file));
            if with_aws {
                aws_env(&mut c);
            }
            c.args(["get", "--raw", "/version"]);
            c
        }
    };
    time_runs(2, calls(&ours, false));
    time_runs(2, calls(&theirs, true));
    let mark = rt.block_on(sts.calls("AssumeRole")).len();
    let k1 = time_runs(kubectl_runs, calls(&ours, false));
    let during = rt.block_on(sts.calls("AssumeRole")).len() - mark;
    let k2 = time_runs(kubectl_runs, calls(&theirs, true));
    row(
        "K1",
        "kubectl get --raw /version, elhaz eks token",
        &k1,
        Some(("with aws eks get-token", &k2)),
    );
    row(
        "K2",
        "kubectl get --raw /version, aws eks get-token",
        &k2,
        None,
    );
    println!(
        "    STS AssumeRole calls: {during} during the {kubectl_runs} kubectl calls with elhaz, {} in the whole run",
        rt.block_on(sts.calls("AssumeRole")).len()
    );
    let refused = eks
        .log()
        .iter()
        .filter(|l| l.starts_with("refused"))
        .count();
    println!("    tokens the fake API server refused: {refused}");
}
