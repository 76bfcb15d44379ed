//! The values a config names that AWS would refuse or read as something else: regions
//! and IAM ARNs, each checked against what AWS accepts, with the closest known value
//! when a typo is near one; and the did-you-mean every check of a name shares. Text
//! only: it must not know of files, profiles or the command line.

use crate::terminal::escape_controls;

/// The partitions an IAM ARN may name (botocore's and the AWS SDK's `partitions.json`).
pub(crate) const PARTITIONS: &[&str] = &[
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
    "aws-eusc",
];

/// The regions AWS lists today (the same `partitions.json`, its `*-global` pseudo
/// regions left out): the did-you-mean for a region that is not one. A region AWS opens
/// later passes by its shape (see [`region`]) without being listed here.
pub(crate) const REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "me-west-1",
    "mx-central-1",
    "sa-east-1",
    "sa-west-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "cn-north-1",
    "cn-northwest-1",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-iso-east-1",
    "us-iso-west-1",
    "us-isob-east-1",
    "us-isob-west-1",
    "eu-isoe-west-1",
    "us-isof-east-1",
    "us-isof-south-1",
    "eusc-de-east-1",
];

/// What comes before the direction in a region name, per partition, as the
/// partitions' `regionRegex` say: aws `^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$`, aws-cn
/// `^cn-`, aws-us-gov `^us-gov-`, aws-iso `^us-iso-`, aws-iso-b `^us-isob-`, aws-iso-e
/// `^eu-isoe-`, aws-iso-f `^us-isof-`, aws-eusc `^eusc-(de)-`.
const REGION_PREFIXES: &[&str] = &[
    "us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx", "cn", "us-gov", "us-iso", "us-isob",
    "eu-isoe", "us-isof", "eusc-de",
];

/// The `\w+` of every region AWS has ever named is a compass direction; any other word
/// (`eu-wst-1`) is a typo, not a region AWS may open.
const DIRECTIONS: &[&str] = &[
    "north",
    "south",
    "east",
    "west",
    "central",
    "northeast",
    "northwest",
    "southeast",
    "southwest",
];

/// The names among `candidates` closest to `name` (at most three, best first): the
/// did-you-mean of every name elhaz checks (NAMEs, profiles, regions).
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a str> {
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(s, _)| *s > 0.7)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// `; did you mean: a, b?`, or nothing when no name is close. The names come from
/// files: their control characters are shown escaped, never sent to the terminal.
pub(crate) fn did_you_mean(close: &[&str]) -> String {
    if close.is_empty() {
        return String::new();
    }
    let shown: Vec<_> = close.iter().map(|n| escape_controls(n)).collect();
    format!("; did you mean: {}?", shown.join(", "))
}

/// A region name: `PREFIX-DIRECTION-N` for one of the partitions' prefixes.
pub(crate) fn region(s: &str) -> Result<(), String> {
    let shaped = REGION_PREFIXES.iter().any(|prefix| {
        let Some(rest) = s.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) else {
            return false;
        };
        let Some((direction, number)) = rest.split_once('-') else {
            return false;
        };
        DIRECTIONS.contains(&direction)
            && !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit())
    });
    if shaped {
        return Ok(());
    }
    Err(format!(
        "{s:?} is not an AWS region{}",
        match closest(s, REGIONS.iter().copied()).as_slice() {
            [] => " (e.g. eu-west-1, us-east-1)".to_string(),
            close => did_you_mean(close),
        }
    ))
}

/// The IAM resource types an ARN is checked for.
#[derive(Clone, Copy)]
enum Resource {
    Role,
    Mfa,
    Policy,
    SamlProvider,
}

impl Resource {
    fn prefix(self) -> &'static str {
        match self {
            Resource::Role => "role/",
            Resource::Mfa => "mfa/",
            Resource::Policy => "policy/",
            Resource::SamlProvider => "saml-provider/",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Resource::Role => "a role ARN",
            Resource::Mfa => "an MFA device ARN",
            Resource::Policy => "a managed policy ARN",
            Resource::SamlProvider => "a SAML provider ARN",
        }
    }

    fn example(self) -> &'static str {
        match self {
            Resource::Role => "arn:aws:iam::ACCOUNT:role/NAME",
            Resource::Mfa => "arn:aws:iam::ACCOUNT:mfa/NAME",
            Resource::Policy => "arn:aws:iam::ACCOUNT:policy/NAME",
            Resource::SamlProvider => "arn:aws:iam::ACCOUNT:saml-provider/NAME",
        }
    }
}

/// A role ARN: `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`.
pub(crate) fn role_arn(s: &str) -> Result<(), String> {
    iam_arn(s, Resource::Role)
}

/// An MFA device: its ARN (`arn:PARTITION:iam::ACCOUNT:mfa/NAME`), or a hardware
/// token's serial number (9 or more letters and digits).
pub(crate) fn mfa_serial(s: &str) -> Result<(), String> {
    if !s.starts_with("arn:") && s.len() >= 9 && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Ok(());
    }
    iam_arn(s, Resource::Mfa)
}

/// A managed policy ARN: `arn:PARTITION:iam::ACCOUNT:policy/NAME`, where ACCOUNT is
/// `aws` for the policies AWS manages.
pub(crate) fn policy_arn(s: &str) -> Result<(), String> {
    iam_arn(s, Resource::Policy)
}

/// A SAML identity provider: `arn:PARTITION:iam::ACCOUNT:saml-provider/NAME`.
pub(crate) fn saml_provider_arn(s: &str) -> Result<(), String> {
    iam_arn(s, Resource::SamlProvider)
}

/// `arn:PARTITION:iam::ACCOUNT:TYPE/[PATH/]NAME`, with the reason when it is not.
fn iam_arn(s: &str, kind: Resource) -> Result<(), String> {
    let not = |why: String| {
        Err(format!(
            "{s:?} is not {}: {why} (expected {})",
            kind.what(),
            kind.example()
        ))
    };
    if !s.starts_with("arn:") {
        return not("an ARN starts with 'arn:'".into());
    }
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let [_, partition, service, region, account, resource] = parts.as_slice() else {
        return not("an ARN has six parts separated by ':'".into());
    };
    if !PARTITIONS.contains(partition) {
        return not(format!(
            "the partition is {partition:?}, not one of {}",
            PARTITIONS.join(", ")
        ));
    }
    if *service != "iam" {
        return not(format!("the service is {service:?}, not \"iam\""));
    }
    if !region.is_empty() {
        return not(format!(
            "IAM ARNs have no region, and this one has {region:?}"
        ));
    }
    let aws_managed = matches!(kind, Resource::Policy) && *account == "aws";
    let twelve_digits = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    if !(aws_managed || twelve_digits) {
        return not(format!("the account must be 12 digits, not {account:?}"));
    }
    let Some(path_and_name) = resource.strip_prefix(kind.prefix()) else {
        return not(format!(
            "the resource must start with {:?}, not {resource:?}",
            kind.prefix()
        ));
    };
    let (path, name) = path_and_name
        .rsplit_once('/')
        .unwrap_or(("", path_and_name));
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
    if !name_ok || !path.bytes().all(|b| b.is_ascii_graphic()) {
        return not(format!(
            "{path_and_name:?} is not a name (letters, digits and _+=,.@-, after an optional path/)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_region_has_the_shape_and_typos_do_not() {
        for r in REGIONS {
            assert_eq!(region(r), Ok(()), "{r}");
        }
        // Regions AWS may open later pass by their shape.
        for r in [
            "eu-west-4",
            "ap-southwest-1",
            "us-isob-south-2",
            "eusc-de-west-1",
        ] {
            assert_eq!(region(r), Ok(()), "{r}");
        }
        let e = region("eu-wst-1").unwrap_err();
        assert!(
            e.ends_with("; did you mean: eu-west-1, eu-west-2, eu-west-3?"),
            "{e}"
        );
        let e = region("eu west").unwrap_err();
        assert!(e.contains("did you mean: eu-west-1"), "{e}");
        for bad in [
            "",
            "eu",
            "eu-west",
            "eu-west-",
            "eu-west-x",
            "EU-WEST-1",
            "us-gov-1",
            "xx-east-1",
            "aws-global",
            "eu-west-1 ",
        ] {
            assert!(region(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn iam_arns_name_the_part_that_is_wrong() {
        assert_eq!(role_arn("arn:aws:iam::123456789012:role/X"), Ok(()));
        assert_eq!(role_arn("arn:aws:iam::123456789012:role/team/X"), Ok(()));
        assert_eq!(role_arn("arn:aws-eusc:iam::123456789012:role/X"), Ok(()));
        let e = role_arn("arn:aws:iam::12345:role/X").unwrap_err();
        assert_eq!(
            e,
            "\"arn:aws:iam::12345:role/X\" is not a role ARN: the account must be 12 digits, not \"12345\" (expected arn:aws:iam::ACCOUNT:role/NAME)"
        );
        let e = role_arn("arn:aws-foo:iam::123456789012:role/X").unwrap_err();
        assert!(
            e.contains("the partition is \"aws-foo\", not one of aws, aws-cn"),
            "{e}"
        );
        let e = role_arn("arn:aws:iam::123456789012:user/X").unwrap_err();
        assert!(e.contains("must start with \"role/\""), "{e}");
        for bad in [
            "Admin",
            "arn:aws:sts::123456789012:role/X",
            "arn:aws:iam:eu-west-1:123456789012:role/X",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/team/",
            "arn:aws:iam::123456789012:role/a b",
            "arn:aws:iam::aws:role/X",
        ] {
            assert!(role_arn(bad).is_err(), "{bad}");
        }
        assert_eq!(policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess"), Ok(()));
        assert_eq!(
            policy_arn("arn:aws:iam::aws:policy/job-function/ViewOnlyAccess"),
            Ok(())
        );
        assert!(policy_arn("arn:aws:iam::aws:role/X").is_err());
        assert_eq!(mfa_serial("arn:aws:iam::123456789012:mfa/me"), Ok(()));
        assert_eq!(mfa_serial("GAHT12345678"), Ok(()));
        assert!(mfa_serial("arn:aws:iam::1234:mfa/me").is_err());
        assert!(mfa_serial("short").is_err());
        assert_eq!(
            saml_provider_arn("arn:aws:iam::123456789012:saml-provider/corp"),
            Ok(())
        );
        // Whatever a value holds, the message quotes it escaped.
        let e = role_arn("arn:aws:iam::1\x1b[2J:role/X").unwrap_err();
        assert!(!e.contains('\x1b'), "{e:?}");
    }

    #[test]
    fn closest_keeps_the_three_best() {
        let names = ["prod", "production", "dev", "staging"];
        assert_eq!(closest("prdo", names), ["prod", "production"]);
        assert!(closest("zzz", names).is_empty());
        assert_eq!(did_you_mean(&[]), "");
        // A name from a file never reaches the terminal as control characters.
        assert_eq!(
            did_you_mean(&["a\x1b[2Jb", "c"]),
            "; did you mean: a\\x1b[2Jb, c?"
        );
    }
}
