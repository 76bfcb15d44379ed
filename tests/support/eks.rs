//! EKS for the tests: a fake API server over TLS (`fake_eks.py`, run by the venv's
//! python) that authenticates tokens as EKS does and asks an STS who signed them, the
//! real kubectl pointed at it, and the tokens `elhaz eks token` prints.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::env::{TestEnv, bin, test_path, wait_until, which_in};
use super::procs::die_with_parent;

/// A fake EKS API server for one cluster, killed when dropped.
pub struct FakeEks {
    pub dir: PathBuf,
    pub cluster: String,
    pub port: u16,
    child: Child,
}

/// The venv's python (botocore, cryptography), which runs the fake.
pub fn venv_python() -> PathBuf {
    which_in(&test_path(), "python3")
        .filter(|p| p.to_string_lossy().contains(".ci/venv"))
        .unwrap_or_else(|| panic!("the .ci/venv python was not found: run .ci/deps"))
}

impl FakeEks {
    /// Starts the fake for `cluster`, taking tokens for the STS at `sts` (moto, whose
    /// keys it reads from moto; or the fake STS, whose keys `keys` gives).
    pub fn start(t: &TestEnv, cluster: &str, sts: &str, keys: &[(String, String)]) -> FakeEks {
        let dir = t.dir.path().join(format!("eks-{cluster}"));
        std::fs::create_dir_all(&dir).unwrap();
        let keys_file = dir.join("keys.json");
        let map: serde_json::Map<String, serde_json::Value> = keys
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect();
        std::fs::write(&keys_file, serde_json::to_string(&map).unwrap()).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fake_eks.py");
        let mut cmd = Command::new(venv_python());
        cmd.arg(script)
            .args(["--cluster", cluster, "--sts", sts, "--dir"])
            .arg(&dir)
            .arg("--keys")
            .arg(&keys_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr")).unwrap());
        die_with_parent(&mut cmd);
        let child = cmd.spawn().expect("start fake_eks.py");
        let port_file = dir.join("port");
        let up = wait_until(Duration::from_secs(30), || port_file.exists());
        let stderr = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
        assert!(up, "the fake EKS API server did not start: {stderr}");
        let port = std::fs::read_to_string(&port_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        FakeEks {
            dir,
            cluster: cluster.to_string(),
            port,
            child,
        }
    }

    pub fn server(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The CA that signed its certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Its decisions so far, one a line: `accepted ARN` or `refused: REASON`.
    pub fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// A kubeconfig whose one context reaches this cluster as a user whose exec
    /// plugin is `elhaz <plugin_args>`.
    pub fn kubeconfig(&self, t: &TestEnv, plugin_args: &[&str]) -> PathBuf {
        kubeconfig_for(t, &self.cluster, &self.server(), &self.ca(), plugin_args)
    }

    /// kubectl with a bare bearer token (no exec plugin) against this cluster.
    pub fn kubectl_with_token(&self, t: &TestEnv, token: &str, args: &[&str]) -> Output {
        let empty = t.dir.path().join("kubeconfig-empty");
        std::fs::write(&empty, "").unwrap();
        let mut c = kubectl(t, &empty);
        c.arg(format!("--server={}", self.server()))
            .arg(format!("--certificate-authority={}", self.ca().display()))
            .arg(format!("--token={token}"))
            .args(args);
        c.output().unwrap()
    }
}

impl Drop for FakeEks {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real kubectl, as the test user, reading `kubeconfig`, with no terminal input.
pub fn kubectl(t: &TestEnv, kubeconfig: &Path) -> Command {
    let path = which_in(&test_path(), "kubectl")
        .unwrap_or_else(|| panic!("kubectl not found on PATH: .ci/deps checks for it"));
    let mut c = t.program(path);
    c.env("KUBECONFIG", kubeconfig).stdin(Stdio::null());
    c
}

/// The token in an ExecCredential `elhaz eks token` printed.
pub fn token_of(exec_credential: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(exec_credential).unwrap_or_else(|e| {
        panic!(
            "not an ExecCredential ({e}): {}",
            String::from_utf8_lossy(exec_credential)
        )
    });
    v["status"]["token"].as_str().unwrap().to_string()
}

/// The presigned URL inside a token.
pub fn url_of(token: &str) -> String {
    let b64 = token
        .strip_prefix("k8s-aws-v1.")
        .expect("the token's prefix");
    String::from_utf8(URL_SAFE_NO_PAD.decode(b64).expect("unpadded base64url")).unwrap()
}

/// A token holding `url`.
pub fn token_for(url: &str) -> String {
    format!("k8s-aws-v1.{}", URL_SAFE_NO_PAD.encode(url))
}

/// The query parameters of a presigned URL, decoded and sorted.
pub fn params_of(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let mut params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.sort();
    params
}

/// A kubeconfig (in the test's temp dir) whose one context reaches `server` (trusting
/// `ca`) as a user whose exec plugin is `elhaz <plugin_args>`.
pub fn kubeconfig_for(
    t: &TestEnv,
    cluster: &str,
    server: &str,
    ca: &Path,
    plugin_args: &[&str],
) -> PathBuf {
    let args: Vec<String> = plugin_args.iter().map(|a| format!("\"{a}\"")).collect();
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {cluster}
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: me
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: {bin}
      args: [{args}]
      interactiveMode: IfAvailable
      provideClusterInfo: false
contexts:
- name: here
  context: {{cluster: {cluster}, user: me}}
current-context: here
",
        ca = ca.display(),
        bin = bin().display(),
        args = args.join(", "),
    );
    let path = t.dir.path().join(format!("kubeconfig-{cluster}"));
    std::fs::write(&path, text).unwrap();
    path
}
