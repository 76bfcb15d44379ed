//! The caller's source context, under the path the rest of the program knows it by.
//! It lives one layer down, in `crate::context`, so that config can use it without
//! importing credentials.

pub use crate::context::*;
