//! `elhaz login NAME`: the AWS console, signed in as the session's role, through the
//! federation endpoint's getSigninToken.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;

use super::Context;
use crate::cli::LoginArgs;
use crate::credentials::policy::DEFAULT_MIN_REMAINING_SECS;
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

pub(crate) fn run(args: LoginArgs, ctx: &Context) -> Result<i32> {
    if let Some(d) = args.duration
        && !(900..=43200).contains(&d.0)
    {
        // As the user wrote it (5m, not 300s).
        let shown = match d.0 {
            0 => "0s".to_string(),
            s => crate::duration::human(i64::try_from(s).unwrap_or(i64::MAX)),
        };
        return Err(Error::usage(format!(
            "--duration {shown} is out of range: the console session lasts 15m to 12h"
        ))
        .with_hint("elhaz login NAME --duration 1h"));
    }
    let name = ctx.name(args.name.get())?;
    let served = ctx.credentials(&name, DEFAULT_MIN_REMAINING_SECS)?;
    let region = args
        .region
        .clone()
        .or(served.region.clone())
        .unwrap_or_else(|| "us-east-1".into());
    let (default_endpoint, console) = partition(&region);
    let endpoint = std::env::var("ELHAZ_FEDERATION_ENDPOINT")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| default_endpoint.to_string());
    let c = &served.credentials;
    let session = json!({
        "sessionId": c.access_key_id,
        "sessionKey": c.secret_access_key(),
        "sessionToken": c.session_token(),
    })
    .to_string();
    let mut url = format!("{endpoint}?Action=getSigninToken");
    if let Some(d) = args.duration {
        url.push_str(&format!("&SessionDuration={}", d.0));
    }
    url.push_str(&format!("&Session={}", enc(&session)));
    let signin_token = get_signin_token(&url, &endpoint)?;
    let destination = args
        .destination
        .clone()
        .unwrap_or_else(|| format!("{console}/console/home?region={region}"));
    let login = format!(
        "{endpoint}?Action=login&Issuer=elhaz&Destination={}&SigninToken={}",
        enc(&destination),
        enc(&signin_token)
    );
    if args.stdout {
        println!("{login}");
        return Ok(0);
    }
    open_browser(&login)
}

/// Calls getSigninToken. The URL carries the credentials: it is never logged.
fn get_signin_token(url: &str, endpoint: &str) -> Result<String> {
    let rt = crate::broker::runtime()?;
    let fail = |what: String| Error::auth(format!("console sign-in failed at {endpoint}: {what}"));
    rt.block_on(async {
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
    })
}

/// Opens `url` (a bearer credential) in the browser through a private page; the
/// browser command's failure is an error with the `--stdout` alternative.
fn open_browser(url: &str) -> Result<i32> {
    let hint = "print the URL instead: elhaz login NAME --stdout";
    let program =
        crate::browser::open_and_wait(url, "AWS console sign-in").map_err(|e| e.with_hint(hint))?;
    eprintln!("elhaz: opened the AWS console in {program}");
    Ok(0)
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
