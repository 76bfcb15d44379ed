//! `elhaz whoami NAME`: STS GetCallerIdentity with the session's credentials, printed
//! as JSON. Knows nothing of where the identity comes from (daemon or engine).

use super::{Context, obscure, print_json};
use crate::cli::WhoamiArgs;
use crate::error::Result;

pub(crate) fn run(args: WhoamiArgs, ctx: &Context) -> Result<i32> {
    let name = super::pin::choose(ctx, args.name.get())?.name;
    let identity = ctx.whoami(&name)?;
    let mut v = serde_json::to_value(&identity).unwrap_or_default();
    if args.obscure {
        obscure(&mut v);
    }
    print_json(&v);
    Ok(0)
}
