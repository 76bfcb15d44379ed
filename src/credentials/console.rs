//! Console sign-in: the federation endpoint's getSigninToken for a session's
//! credentials, and the login URL made from it. The request carries the credentials
//! and the URL is a bearer credential: neither is ever logged. Knows nothing of the
//! terminal or the browser.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;

use super::Credentials;
use crate::error::{Error, Result};

/// The partition's federation endpoint and console, from the region.
pub(crate) fn partition(region: &str) -> (&'static str, &'static str) {
    if region.starts_with("cn-") {
        (
            "https://signin.amazonaws.cn/federation",
            "https://console.amazonaws.cn",
        )
    } else if region.starts_with("us-gov-") {
        (
            "https://signin.amazonaws-us-gov.com/federation",
            "https://console.amazonaws-us-gov.com",
        )
    } else {
        (
            "https://signin.aws.amazon.com/federation",
            "https://console.aws.amazon.com",
        )
    }
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// The console login URL for `c`: getSigninToken at `endpoint` (the partition's
/// federation endpoint when None), then `Action=login` towards `destination` (the
/// console home of `region` when None).
pub(crate) async fn signin_url(
    c: &Credentials,
    region: &str,
    endpoint: Option<&str>,
    duration: Option<u64>,
    destination: Option<&str>,
) -> Result<String> {
    let (default_endpoint, console) = partition(region);
    let endpoint = endpoint.unwrap_or(default_endpoint);
    let session = json!({
        "sessionId": c.access_key_id,
        "sessionKey": c.secret_access_key(),
        "sessionToken": c.session_token(),
    })
    .to_string();
    let mut url = format!("{endpoint}?Action=getSigninToken");
    if let Some(d) = duration {
        url.push_str(&format!("&SessionDuration={d}"));
    }
    url.push_str(&format!("&Session={}", enc(&session)));
    let signin_token = get_signin_token(&url, endpoint).await?;
    let destination = destination
        .map(str::to_string)
        .unwrap_or_else(|| format!("{console}/console/home?region={region}"));
    Ok(format!(
        "{endpoint}?Action=login&Issuer=elhaz&Destination={}&SigninToken={}",
        enc(&destination),
        enc(&signin_token)
    ))
}

/// Calls getSigninToken. The URL carries the credentials: it is never logged.
async fn get_signin_token(url: &str, endpoint: &str) -> Result<String> {
    let fail = |what: String| Error::auth(format!("console sign-in failed at {endpoint}: {what}"));
    async {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| fail(format!("no TLS roots: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let client: hyper_util::client::legacy::Client<_, Empty<Bytes>> =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        let uri: hyper::Uri = url.parse().map_err(|_| fail("bad endpoint URL".into()))?;
        let resp = tokio::time::timeout(std::time::Duration::from_secs(30), client.get(uri))
            .await
            .map_err(|_| fail("no answer within 30s".into()))?
            .map_err(|e| {
                fail(crate::error::connect_reason(&crate::error::chain(&e)))
            })?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(format!("cannot read the answer: {e}")))?
            .to_bytes();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.chars().take(200).collect();
            let hint = if status.as_u16() == 400 {
                " (role-chained sessions cannot ask for --duration; and long-term keys are not accepted)"
            } else {
                ""
            };
            return Err(fail(format!("HTTP {status}: {}{hint}", text.trim())));
        }
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| fail("the answer is not JSON".into()))?;
        v["SigninToken"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| fail("the answer has no SigninToken".into()))
    }
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions() {
        assert_eq!(
            partition("eu-west-1").0,
            "https://signin.aws.amazon.com/federation"
        );
        assert_eq!(
            partition("cn-north-1").0,
            "https://signin.amazonaws.cn/federation"
        );
        assert_eq!(
            partition("us-gov-west-1").1,
            "https://console.amazonaws-us-gov.com"
        );
    }
}
