//! `elhaz config ...`: its subcommands and their fields.

use super::*;

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ConfigCommand {
    /// Create a config from flags, a file, prompts or $EDITOR
    #[command(after_help = "Examples:
  elhaz config add prod --role-arn arn:aws:iam::123456789012:role/Admin --region eu-west-1
  elhaz config add dev --role-arn arn:aws:iam::111111111111:role/Dev --profile my-sso
  elhaz config add ci --from-file ci.yaml
  elhaz config add prod            # asks, on a terminal")]
    Add(ConfigAddArgs),

    /// Print a config as JSON
    #[command(after_help = "Example:
  elhaz config get prod --obscure")]
    Get(ConfigGetArgs),

    /// List configs and AWS CLI profiles
    #[command(after_help = "Example:
  elhaz config list --json")]
    List(JsonFlag),

    /// Print a config's Meta section as JSON
    #[command(after_help = "Example:
  elhaz config meta prod")]
    Meta(ConfigNameOnly),

    /// Delete a config
    #[command(after_help = "Example:
  elhaz config remove old --yes")]
    Remove(ConfigRemoveArgs),

    /// Change a config with flags, a file, prompts or $EDITOR
    #[command(after_help = "Examples:
  elhaz config update prod --duration 1h
  elhaz config update prod --editor")]
    Update(ConfigUpdateArgs),
}

#[derive(Debug, Args)]
pub struct NameOnly {
    #[command(flatten)]
    pub name: NameArg,
}

// The NAME of an existing config, as a positional argument or with -n/--name: it
// completes elhaz configs only (an AWS profile is no config to get, change or remove).
// A plain comment, as on NameArg.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigName {
    /// The config (a picker over the configs opens when omitted on a terminal)
    #[arg(value_name = "NAME", conflicts_with = "name_flag", add = Completes::Configs)]
    pub name: Option<String>,

    /// The same NAME, spelled as in the original elhaz
    #[arg(
        short = 'n',
        long = "name",
        value_name = "NAME",
        hide_short_help = true,
        add = Completes::Configs
    )]
    pub name_flag: Option<String>,
}

impl ConfigName {
    pub fn get(&self) -> Option<&str> {
        self.name.as_deref().or(self.name_flag.as_deref())
    }
}

// The NAME of a config to create: nothing completes it (it is new). A plain comment,
// as on NameArg.
#[derive(Debug, Clone, Default, Args)]
pub struct NewConfigName {
    /// The new config's name: letters, digits, '_', '-' (asked when omitted on a terminal)
    #[arg(value_name = "NAME", conflicts_with = "name_flag")]
    pub name: Option<String>,

    /// The same NAME, spelled as in the original elhaz
    #[arg(
        short = 'n',
        long = "name",
        value_name = "NAME",
        hide_short_help = true
    )]
    pub name_flag: Option<String>,
}

impl NewConfigName {
    pub fn get(&self) -> Option<&str> {
        self.name.as_deref().or(self.name_flag.as_deref())
    }
}

#[derive(Debug, Args)]
pub struct ConfigNameOnly {
    #[command(flatten)]
    pub name: ConfigName,
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ConfigGetArgs {
    #[command(flatten)]
    pub name: ConfigName,

    /// Replace sensitive values with ***
    #[arg(long)]
    pub obscure: bool,
}

#[derive(Debug, Args)]
pub struct ConfigRemoveArgs {
    #[command(flatten)]
    pub name: ConfigName,

    /// Do not ask for confirmation
    #[arg(short, long)]
    pub yes: bool,
}

// The fields a config can be built from. Every flag maps to one YAML key. (A plain
// comment, as on NameArg.)
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigFields {
    /// AssumeRole.RoleArn: the role to assume
    #[arg(long, value_name = "ARN", help_heading = "Config fields")]
    pub role_arn: Option<String>,
    /// AssumeRole.RoleSessionName [default: elhaz-USER-TIME]
    #[arg(long, value_name = "NAME", help_heading = "Config fields")]
    pub role_session_name: Option<String>,
    /// AssumeRole.DurationSeconds (900 to 43200, or 1h)
    #[arg(long, value_name = "DURATION", help_heading = "Config fields")]
    pub duration: Option<Seconds>,
    /// AssumeRole.ExternalId
    #[arg(long, value_name = "ID", help_heading = "Config fields")]
    pub external_id: Option<String>,
    /// AssumeRole.SerialNumber: the MFA device ARN
    #[arg(long, value_name = "ARN", help_heading = "Config fields")]
    pub serial_number: Option<String>,
    /// AssumeRole.SourceIdentity
    #[arg(long, value_name = "ID", help_heading = "Config fields")]
    pub source_identity: Option<String>,
    /// AssumeRole.Policy: an inline session policy (JSON text)
    #[arg(long, value_name = "JSON", help_heading = "Config fields")]
    pub policy: Option<String>,
    /// AssumeRole.PolicyArns (repeatable)
    #[arg(
        long = "policy-arn",
        value_name = "ARN",
        help_heading = "Config fields"
    )]
    pub policy_arns: Vec<String>,
    /// AssumeRole.Tags as KEY=VALUE (repeatable)
    #[arg(long = "tag", value_name = "KEY=VALUE", help_heading = "Config fields")]
    pub tags: Vec<String>,
    /// AssumeRole.TransitiveTagKeys (repeatable)
    #[arg(
        long = "transitive-tag-key",
        value_name = "KEY",
        help_heading = "Config fields"
    )]
    pub transitive_tag_keys: Vec<String>,
    /// MFA.command: prints the MFA code (run by sh -c)
    #[arg(long, value_name = "COMMAND", help_heading = "Config fields")]
    pub mfa_command: Option<String>,
    /// MFA.timeout
    #[arg(long, value_name = "DURATION", help_heading = "Config fields")]
    pub mfa_timeout: Option<Seconds>,
    /// Session.region_name: the region of the session, also given to commands
    #[arg(long, value_name = "REGION", help_heading = "Config fields")]
    pub region: Option<String>,
    /// Session.profile_name: the AWS CLI profile whose credentials assume the role
    #[arg(long, value_name = "PROFILE", help_heading = "Config fields")]
    pub profile: Option<String>,
    /// STS.region_name: the region of the STS endpoint
    #[arg(long, value_name = "REGION", help_heading = "Config fields")]
    pub sts_region: Option<String>,
    /// STS.endpoint_url
    #[arg(long, value_name = "URL", help_heading = "Config fields")]
    pub sts_endpoint_url: Option<String>,
    /// Meta.description: for people, never sent to AWS
    #[arg(long, value_name = "TEXT", help_heading = "Config fields")]
    pub description: Option<String>,
}

#[derive(Debug, Args)]
pub struct ConfigAddArgs {
    #[command(flatten)]
    pub name: NewConfigName,

    #[command(flatten)]
    pub fields: ConfigFields,

    /// Read the whole config from a YAML file, or - for stdin
    #[arg(long, value_name = "PATH")]
    pub from_file: Option<PathBuf>,

    /// Write the config in $EDITOR
    #[arg(long, conflicts_with = "from_file")]
    pub editor: bool,

    /// Overwrite an existing config
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ConfigUpdateArgs {
    #[command(flatten)]
    pub name: ConfigName,

    #[command(flatten)]
    pub fields: ConfigFields,

    /// Replace the whole config with a YAML file, or - for stdin
    #[arg(long, value_name = "PATH")]
    pub from_file: Option<PathBuf>,

    /// Edit the config in $EDITOR
    #[arg(long, conflicts_with = "from_file")]
    pub editor: bool,
}
