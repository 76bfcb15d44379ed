//! AssumeRoleWithSAML for a config's `AssumeRoleWithSAML` section: an unsigned call, as
//! the SDKs make it, with an assertion fetched afresh from a command or a file and
//! checked before it is sent. It knows nothing of the daemon or the terminal.

use crate::duration::now;
use aws_config::Region;
use aws_sdk_sts::types::PolicyDescriptorType;

use super::sts::convert;
use super::sts_error::{StsCall, map_sdk_error};
use super::{Credentials, StsTarget, external};
use crate::config::schema::Saml;
use crate::error::{Error, Result};
use crate::sensitive::Sensitive;

/// AssumeRoleWithSAML for a config's AssumeRoleWithSAML section: an unsigned call, as
/// the SDKs make it, with an assertion fetched afresh.
pub(super) async fn assume_saml(
    saml: &Saml,
    sdk: &aws_config::SdkConfig,
    target: &StsTarget,
) -> Result<Credentials> {
    let assertion = external::read(
        saml.assertion_file.as_deref(),
        saml.assertion_command.as_ref(),
        &external::SAML,
    )
    .await?;
    check_assertion(&assertion, saml)?;
    let mut b = aws_sdk_sts::config::Builder::from(sdk).region(Region::new(target.region.clone()));
    b.set_credentials_provider(None);
    if let Some(url) = &target.endpoint_url {
        b = b.endpoint_url(url);
    }
    let client = aws_sdk_sts::Client::from_conf(b.build());
    let issued = now();
    let mut req = client
        .assume_role_with_saml()
        .role_arn(&saml.role_arn)
        .principal_arn(&saml.principal_arn)
        .saml_assertion(assertion.expose());
    if let Some(d) = saml.duration_seconds {
        req = req.duration_seconds(d as i32);
    }
    if let Some(p) = &saml.policy {
        req = req.policy(p);
    }
    for arn in saml.policy_arns.iter().flatten() {
        req = req.policy_arns(PolicyDescriptorType::builder().arn(arn.arn()).build());
    }
    let out = req
        .send()
        .await
        .map_err(|e| map_sdk_error(e, StsCall::Saml(&saml.role_arn), target))?;
    convert(out.credentials(), issued, &saml.role_arn)
}

/// What STS would refuse with a bare 400 (or moto with a 500 page) is said here, naming
/// where the assertion came from: it must be base64 of a SAML Response.
fn check_assertion(assertion: &Sensitive, saml: &Saml) -> Result<()> {
    let from = match (&saml.assertion_file, &saml.assertion_command) {
        (Some(f), _) => format!("SAMLAssertionFile {f}"),
        (None, Some(c)) => format!("SAMLAssertionCommand `{}`", external::shown(c)),
        (None, None) => "the SAML assertion".into(),
    };
    let compact: zeroize::Zeroizing<String> = zeroize::Zeroizing::new(
        assertion
            .expose()
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect(),
    );
    let decoded = aws_smithy_types::base64::decode(compact.as_str())
        .map(zeroize::Zeroizing::new)
        .map_err(|_| {
            Error::auth(format!(
                "{from} did not print a SAML assertion: expected the base64 SAMLResponse"
            ))
        })?;
    let text = String::from_utf8_lossy(&decoded);
    if !(text.contains("Response") && text.contains("Assertion")) {
        return Err(Error::auth(format!(
            "{from} did not print a SAML assertion: the base64 decodes to no SAML Response"
        )));
    }
    Ok(())
}
