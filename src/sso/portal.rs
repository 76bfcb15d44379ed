//! The portal client (placeholder): the session's region, AWS_ENDPOINT_URL_SSO.

use aws_sdk_sso::config::{BehaviorVersion, Region};

use super::session::SsoSession;

pub(crate) fn client(session: &SsoSession) -> aws_sdk_sso::Client {
    let mut b = aws_sdk_sso::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(session.region.clone()));
    if let Some(url) = std::env::var("AWS_ENDPOINT_URL_SSO")
        .ok()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .filter(|u| !u.is_empty())
    {
        b = b.endpoint_url(url);
    }
    aws_sdk_sso::Client::from_conf(b.build())
}
