//! Configs: the YAML schema, the store on disk, the AWS CLI files (aws_ini) and their
//! profiles, and how a NAME is resolved to one of them. Nothing here calls STS, talks
//! to the daemon or prints.

pub mod aws_ini;
pub(crate) mod check;
pub(crate) mod kubeconfig;
pub mod parse;
pub(crate) mod pins;
pub(crate) mod schema;
pub(crate) mod store;
pub(crate) mod trust;

pub(crate) use store::Store;
pub(crate) mod paths;
pub(crate) mod profiles;
pub(crate) mod resolve;

pub(crate) use paths::Paths;
pub(crate) use profiles::AwsProfiles;
pub(crate) use resolve::{Source, resolve};
