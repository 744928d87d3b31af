//! `secgraph secrets refresh|clear`: the owner-only cache of Key Vault secrets (`KeyVault.UseKeyring: true`).

use super::Env;
use crate::UsageError;
use crate::cli::SecretsCmd;

/// Refreshes every referenced secret into the cache, or removes the cache.
pub(crate) async fn run(env: &Env, action: &SecretsCmd) -> anyhow::Result<()> {
    let s = env
        .settings
        .as_ref()
        .ok_or_else(|| UsageError("no settings file: the secret cache follows the settings' KeyVault references".into()))?;
    let cache = secgraph::keyvault::SecretCache::at(
        env.options
            .secret_cache
            .clone()
            .unwrap_or_else(secgraph::keyvault::SecretCache::default_path),
    );
    match action {
        SecretsCmd::Clear => {
            let had = cache.clear()?;
            println!("{} {}", if had { "removed" } else { "no secret cache at" }, cache.path().display());
        }
        SecretsCmd::Refresh => {
            let report = secgraph::connect::refresh_secrets(s, &env.options).await?;
            let mut failed = 0;
            for (name, r) in &report {
                match r {
                    Ok(()) => println!("refreshed {name}"),
                    Err(e) => {
                        failed += 1;
                        println!("FAILED    {name}: {e}");
                    }
                }
            }
            println!("{} secret(s) cached in {}", report.len() - failed, cache.path().display());
            if failed > 0 {
                // A failure to read secrets, not a malformed command: the settings' exit code.
                return Err(secgraph::Error::Setting {
                    origin: "Key Vault".into(),
                    setting: "secrets refresh".into(),
                    message: format!("{failed} secret(s) could not be read"),
                }
                .into());
            }
        }
    }
    Ok(())
}
