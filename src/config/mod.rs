//! Configs: the YAML schema, the store on disk, AWS CLI profiles, and how a NAME is
//! resolved to one of them. Nothing here calls STS, talks to the daemon or prints.

pub mod parse;
pub mod schema;
pub mod store;
pub mod trust;

pub use store::Store;
pub mod paths;
pub mod profiles;
pub mod resolve;

pub use paths::Paths;
pub(crate) use profiles::AwsProfiles;
pub(crate) use resolve::{Source, resolve};
