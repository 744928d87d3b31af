//! `secgraph config check [--resolve]` and `secgraph config instances`: where every setting and secret comes from,
//! and how each instance signs in — never a value.

use super::Env;
use crate::cli::{Cli, ConfigCmd};
use secgraph::ConnectOptions;

pub(crate) async fn run(env: &Env, action: &ConfigCmd, cli: &Cli) -> anyhow::Result<()> {
    let s = env.require_settings(cli)?;
    let options = &env.options;
    match action {
        // Handled before settings are read (it writes them).
        ConfigCmd::Init(_) => {}
        ConfigCmd::Instances => {
            let names = s.instances();
            let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0).max("(default)".len());
            if s.has_default_instance() {
                println!("{:<width$}  MicrosoftGraph", "(default)");
            }
            for i in names {
                println!("{i:<width$}  MicrosoftGraph-{i}");
            }
        }
        ConfigCmd::Check { resolve } => {
            println!("settings: {} ({})", s.origin(), s.source());
            let azure = s.azure()?;
            let cloud = match (&azure.resource_manager_url, &azure.cloud) {
                (Some(rm), _) => format!("custom, from {rm}"),
                (None, c) => c.clone().unwrap_or_else(|| "global".into()),
            };
            println!("cloud:    {cloud}");
            if !azure.ca_certificates.is_empty() {
                println!(
                    "extra CA: {}",
                    azure
                        .ca_certificates
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let kv = s.keyvault()?;
            if let Some(kv) = &kv {
                println!(
                    "Key Vault: vault {}, sign-in {}, cache {}",
                    kv.vault_name.as_deref().unwrap_or("(none)"),
                    if kv.auth_methods.is_empty() {
                        "default chain".into()
                    } else {
                        kv.auth_methods.join(", ")
                    },
                    if kv.use_keyring { "on" } else { "off" }
                );
            }
            if let Some(p) = s.proxy()? {
                println!(
                    "proxy:    {} {}",
                    p.url,
                    if p.username.is_some() { "(with credentials)" } else { "" }
                );
            }
            let mut names: Vec<Option<String>> = if s.has_default_instance() { vec![None] } else { vec![] };
            names.extend(s.instances().into_iter().map(Some));
            let refs = secgraph::connect::vault_references(s).unwrap_or_default();
            for name in names {
                let one = ConnectOptions {
                    instance: name.clone(),
                    ..options.clone()
                };
                // The library's own view of the instance: the same arguments and sign-in method a connection uses.
                let args = secgraph::connect::EffectiveArgs::gather(Some(s), &one)?;
                let missing = args.missing();
                let auth = if missing.is_empty() {
                    args.sign_in_method().describe().to_string()
                } else {
                    format!("(incomplete: missing {})", missing.join(", "))
                };
                println!();
                println!("{}  — signs in with {auth}", args.source());
                for (key, path, r) in args.entries() {
                    let state = match r {
                        secgraph::config::SecretRef::Literal(_) => "ok".to_string(),
                        secgraph::config::SecretRef::EnvVar(v) => match std::env::var(v) {
                            Ok(x) if !x.is_empty() => "ok (set)".into(),
                            _ => "NOT SET".into(),
                        },
                        secgraph::config::SecretRef::KeyVault(_) => {
                            let target = refs
                                .iter()
                                .find(|(p, _)| p == path)
                                .map(|(_, t)| t.to_string())
                                .unwrap_or_else(|| "?".into());
                            if *resolve {
                                match secgraph::connect::resolve_one(s, &one, path).await {
                                    Ok(()) => format!("{target}: resolves"),
                                    Err(e) => format!("{target}: FAILS: {e}"),
                                }
                            } else {
                                format!("{target} (use --resolve to check)")
                            }
                        }
                        _ => "(a reference this version cannot check)".into(),
                    };
                    println!("  {key:<18} {:<38} {state}", r.describe());
                }
            }
        }
    }
    Ok(())
}
