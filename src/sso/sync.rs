//! Placeholder: the marked block of generated profiles in the AWS config file
//! arrives with `elhaz sso sync`.
