//! IAM Identity Center (placeholder of the session, token and portal parts, enough for
//! `sso roles` and `sso sync`).

pub(crate) mod accounts;
pub(crate) mod portal;
pub(crate) mod session;
pub(crate) mod sync;
pub(crate) mod token;
