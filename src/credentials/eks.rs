//! Amazon EKS with a session's credentials: the bearer token a cluster's API server
//! accepts (`k8s-aws-v1.` and a presigned STS GetCallerIdentity URL, as
//! aws-iam-authenticator and `aws eks get-token` make it), and DescribeCluster (where a
//! cluster's API server is and which CA signed it). Signing a token calls nobody: the
//! cluster makes the GET. It knows no kubeconfig, daemon or terminal.

use std::time::{Duration, SystemTime};

use aws_config::Region;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

use super::sts::{base_loader, sdk_credentials};
use super::{Credentials, StsTarget};
use crate::context::SourceContext;
use crate::error::{Error, Kind, Result};
use crate::sensitive::Sensitive;

/// What every EKS token starts with.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The signed header that binds a token to one cluster.
pub const CLUSTER_HEADER: &str = "x-k8s-aws-id";
/// `X-Amz-Expires` of the presigned URL. STS ignores it and the API server takes the
/// URL for 15 minutes after its `X-Amz-Date`; 60 is what every token maker sends.
const URL_EXPIRES: Duration = Duration::from_secs(60);
/// How long kubectl may use a token: a minute short of the API server's 15.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(14 * 60);
/// A token is given up this long before the session's credentials expire.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// A token for one cluster and when kubectl should ask for another. Debug hides the
/// token (it is a bearer credential for the session's identity); its memory is wiped
/// on drop.
pub struct Token {
    value: Sensitive,
    pub expires: OffsetDateTime,
}

impl Token {
    pub fn value(&self) -> &str {
        self.value.expose()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("value", &"***")
            .field("expires", &crate::times::zulu(self.expires))
            .finish()
    }
}

/// Where a token's presigned URL points, and for which cluster.
#[derive(Debug, Clone, Copy)]
pub struct Presign<'a> {
    /// The STS endpoint, e.g. `https://sts.eu-west-1.amazonaws.com`.
    pub endpoint: &'a str,
    /// The region the URL is signed for.
    pub region: &'a str,
    /// The cluster's name, signed as the `x-k8s-aws-id` header.
    pub cluster: &'a str,
}

/// The presigned `GET <endpoint>/?Action=GetCallerIdentity&Version=2011-06-15` URL,
/// SigV4 query-signed at `at` with `creds`, `host` and `x-k8s-aws-id` signed.
pub fn presigned_url(creds: &Credentials, to: &Presign<'_>, at: SystemTime) -> Result<String> {
    use aws_sigv4::http_request::{
        SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
    };
    let bad = |e: &dyn std::fmt::Display| {
        Error::config(format!(
            "cannot presign GetCallerIdentity for {} at {}: {}",
            to.cluster,
            to.endpoint,
            crate::error::tidy(&e.to_string())
        ))
    };
    let url = format!(
        "{}/?Action=GetCallerIdentity&Version=2011-06-15",
        to.endpoint.trim_end_matches('/')
    );
    let identity = sdk_credentials(creds, "elhaz").into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(URL_EXPIRES);
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(to.region)
        .name("sts")
        .time(at)
        .settings(settings)
        .build()
        .map_err(|e| bad(&e))?
        .into();
    let headers = std::iter::once((CLUSTER_HEADER, to.cluster));
    let signable = SignableRequest::new("GET", url.as_str(), headers, SignableBody::Bytes(&[]))
        .map_err(|e| bad(&e))?;
    let (instructions, _signature) = sign(signable, &params).map_err(|e| bad(&e))?.into_parts();
    let mut request = http::Request::builder()
        .uri(url.as_str())
        .body(())
        .map_err(|e| bad(&e))?;
    instructions.apply_to_request_http1x(&mut request);
    Ok(request.uri().to_string())
}

/// A token for `to.cluster` signed at `now` with the session's `creds`: valid for
/// [`TOKEN_LIFETIME`], or until [`EXPIRY_MARGIN`] before the credentials expire.
pub fn token(creds: &Credentials, to: &Presign<'_>, now: OffsetDateTime) -> Result<Token> {
    let url = presigned_url(creds, to, SystemTime::from(now))?;
    let value = Sensitive::new(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(&url)));
    let until_session = creds.expiration - EXPIRY_MARGIN;
    let expires = (now + TOKEN_LIFETIME).min(until_session).max(now);
    Ok(Token { value, expires })
}

/// The STS endpoint a token for `target` points at: the configured one, else the
/// region's as the SDK resolves it (FIPS and dual-stack as the caller's context says).
pub(crate) async fn sts_endpoint(target: &StsTarget, ctx: &SourceContext) -> Result<String> {
    use aws_sdk_sts::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
    if let Some(url) = &target.endpoint_url {
        return Ok(url.clone());
    }
    let flag = |var: &str| ctx.get(var).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let unknown = |e: &dyn std::fmt::Display| {
        Error::config(format!(
            "no STS endpoint for region {:?}: {e}",
            target.region
        ))
        .with_hint("name a region: --region REGION")
    };
    let params = Params::builder()
        .region(target.region.clone())
        .use_fips(flag("AWS_USE_FIPS_ENDPOINT"))
        .use_dual_stack(flag("AWS_USE_DUALSTACK_ENDPOINT"))
        .use_global_endpoint(false)
        .build()
        .map_err(|e| unknown(&e))?;
    let endpoint = DefaultResolver::new()
        .resolve_endpoint(&params)
        .await
        .map_err(|e| unknown(&e))?;
    Ok(endpoint.url().to_string())
}

/// What a kubeconfig needs of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub arn: String,
    /// The API server's URL.
    pub endpoint: String,
    /// The base64 PEM of the CA that signed the API server's certificate.
    pub certificate_authority: String,
}

/// EKS DescribeCluster for `name` in `region`, signed with `creds` (the endpoint as the
/// caller's context sets it: `AWS_ENDPOINT_URL_EKS`, `AWS_ENDPOINT_URL`).
pub(crate) async fn describe_cluster(
    creds: &Credentials,
    region: &str,
    name: &str,
    ctx: &SourceContext,
) -> Result<Cluster> {
    let sdk = base_loader(ctx.get("AWS_CA_BUNDLE"), ctx)?
        .region(Region::new(region.to_string()))
        .no_credentials()
        .load()
        .await;
    let conf = aws_sdk_eks::config::Builder::from(&sdk)
        .credentials_provider(sdk_credentials(creds, "elhaz"))
        .build();
    let out = aws_sdk_eks::Client::from_conf(conf)
        .describe_cluster()
        .name(name)
        .send()
        .await
        .map_err(|e| describe_error(&e, name, region))?;
    let cluster = out.cluster();
    let status = cluster
        .and_then(|c| c.status())
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|| "unknown".into());
    let endpoint = cluster.and_then(|c| c.endpoint()).filter(|e| !e.is_empty());
    let ca = cluster
        .and_then(|c| c.certificate_authority())
        .and_then(|c| c.data())
        .filter(|d| !d.is_empty());
    let (Some(endpoint), Some(ca)) = (endpoint, ca) else {
        return Err(Error::config(format!(
            "cluster {name} in {region} has no API endpoint yet (status {status})"
        ))
        .with_hint("wait until it is ACTIVE, then run the command again"));
    };
    Ok(Cluster {
        arn: cluster
            .and_then(|c| c.arn())
            .map(str::to_string)
            .unwrap_or_else(|| name.to_string()),
        endpoint: endpoint.to_string(),
        certificate_authority: ca.to_string(),
    })
}

/// DescribeCluster's failure in one line: an unknown cluster names the region, a
/// refusal is AWS's, anything else says why the call did not get through.
fn describe_error<E, R>(err: &aws_sdk_eks::error::SdkError<E, R>, name: &str, region: &str) -> Error
where
    E: aws_sdk_eks::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_eks::error::SdkError;
    let SdkError::ServiceError(service) = err else {
        let reason = crate::error::connect_reason(&crate::error::chain(err));
        return Error::auth(format!(
            "EKS DescribeCluster for {name} in {region} failed: {reason}"
        ));
    };
    let e = service.err();
    let code = e.code().unwrap_or("unknown error");
    let message = e.message().unwrap_or_default();
    if code == "ResourceNotFoundException" {
        return Error::config(format!("no EKS cluster {name} in {region}: {message}"))
            .with_hint(format!(
                "check the name and region: elhaz exec NAME -- aws eks list-clusters --region {region}"
            ));
    }
    let kind = if code.contains("AccessDenied") || code.contains("Unauthorized") {
        Kind::Auth
    } else {
        Kind::Other
    };
    Error::new(
        kind,
        format!("EKS DescribeCluster for {name} in {region} refused: {code}: {message}"),
    )
    .with_detail(crate::error::Detail::Aws {
        code: code.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn creds(expiry: OffsetDateTime) -> Credentials {
        Credentials::new(
            "ASIAEXAMPLEKEY000001",
            "example-secret",
            "example-session-token",
            expiry,
            expiry - time::Duration::hours(1),
        )
    }

    const TO: Presign<'static> = Presign {
        endpoint: "https://sts.eu-west-1.amazonaws.com",
        region: "eu-west-1",
        cluster: "demo",
    };

    #[test]
    fn the_url_is_a_query_signed_get_caller_identity_bound_to_the_cluster() {
        let at = datetime!(2026-03-01 10:00:00 UTC);
        let url = presigned_url(&creds(at + time::Duration::hours(1)), &TO, at.into()).unwrap();
        assert!(
            url.starts_with("https://sts.eu-west-1.amazonaws.com/?"),
            "{url}"
        );
        for part in [
            "Action=GetCallerIdentity",
            "Version=2011-06-15",
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=ASIAEXAMPLEKEY000001%2F20260301%2Feu-west-1%2Fsts%2Faws4_request",
            "X-Amz-Date=20260301T100000Z",
            "X-Amz-Expires=60",
            "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
            "X-Amz-Security-Token=example-session-token",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} missing from {url}");
        }
        assert!(!url.contains("example-secret"));
    }

    #[test]
    fn the_endpoint_is_the_regions_unless_one_is_configured() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let ctx = SourceContext::default();
        let at = |region: &str, url: Option<&str>| {
            let target = StsTarget {
                region: region.into(),
                endpoint_url: url.map(str::to_string),
                ca_bundle: None,
            };
            rt.block_on(sts_endpoint(&target, &ctx)).unwrap()
        };
        assert_eq!(at("eu-west-1", None), "https://sts.eu-west-1.amazonaws.com");
        assert_eq!(at("us-east-1", None), "https://sts.us-east-1.amazonaws.com");
        assert_eq!(
            at("cn-north-1", None),
            "https://sts.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            at("eu-west-1", Some("http://127.0.0.1:9")),
            "http://127.0.0.1:9"
        );
    }

    #[test]
    fn a_token_lasts_14_minutes_or_until_a_minute_before_the_session_ends() {
        let now = datetime!(2026-03-01 10:00:00 UTC);
        let long = token(&creds(now + time::Duration::hours(1)), &TO, now).unwrap();
        assert_eq!(long.expires, now + time::Duration::minutes(14));
        let decoded = URL_SAFE_NO_PAD
            .decode(long.value().strip_prefix(TOKEN_PREFIX).unwrap())
            .unwrap();
        assert!(
            String::from_utf8(decoded)
                .unwrap()
                .starts_with("https://sts.")
        );
        let short = token(&creds(now + time::Duration::minutes(5)), &TO, now).unwrap();
        assert_eq!(short.expires, now + time::Duration::minutes(4));
        assert!(!format!("{short:?}").contains(TOKEN_PREFIX), "{short:?}");
    }
}
