//! `elhaz allow`, `elhaz deny` and `elhaz pin`: project pins.

use std::path::PathBuf;

use clap::Args;

use super::Completes;

#[derive(Debug, Args)]
pub struct AllowArgs {
    /// The directory whose pin (.elhaz.yaml, here or above) to trust [default: .]
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DenyArgs {
    /// The directory whose pin (.elhaz.yaml, here or above) to forget [default: .]
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PinArgs {
    /// The config or AWS CLI profile this directory uses (a picker opens when omitted on a terminal)
    #[arg(value_name = "NAME", add = Completes::Names, conflicts_with = "show")]
    pub name: Option<String>,

    /// The region the pin sets
    #[arg(long, value_name = "REGION", conflicts_with = "show")]
    pub region: Option<String>,

    /// Say which pin applies here and whether it is trusted (exit 1 when none is obeyed)
    #[arg(long)]
    pub show: bool,
}
