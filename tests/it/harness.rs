//! The harness itself works: a fake STS answers, moto answers, the binary runs isolated.
use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn fake_sts_serves_assume_role_through_elhaz() {
    let (sts, t) = TestEnv::with_role(std::time::Duration::from_secs(3600)).await;
    let out = t
        .cmd()
        .args(["--no-daemon", "export", "prod"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["access_key"], "ASIAFAKE000000000001");
    assert_eq!(sts.calls("AssumeRole").await.len(), 1);
}
