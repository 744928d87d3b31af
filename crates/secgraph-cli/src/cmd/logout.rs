//! `secgraph logout [--all]`: forget cached user sign-ins.

use super::Env;
use crate::UsageError;

/// Removes cached sign-ins from the token cache the connection would use.
pub(crate) fn run(env: &Env, all: bool) -> anyhow::Result<()> {
    let (settings, options) = (env.settings.as_ref(), &env.options);
    let args = secgraph::connect::EffectiveArgs::gather(settings, options).ok();
    let path = super::token_cache_path(env);
    let cache = secgraph::auth::TokenCache::at(&path);
    let user = if all {
        None
    } else {
        options
            .username
            .clone()
            .or_else(|| args.as_ref().and_then(|a| a.literal("username")))
    };
    if !all && user.is_none() {
        return Err(UsageError("no account to forget: configure UserName, pass --username, or use --all".into()).into());
    }
    let n = cache.remove(user.as_deref())?;
    println!("removed {n} cached sign-in(s) from {}", cache.path().display());
    Ok(())
}
