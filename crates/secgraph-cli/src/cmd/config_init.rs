//! `secgraph config init`: writes a `DataProviders.MicrosoftGraph[-NAME]` section to a msticpyconfig.yaml, from
//! flags (for scripts) or by asking on a terminal. A secret is never echoed: it is read without echo (or from
//! standard input), and a file holding one is made readable by its owner only.

use crate::UsageError;
use crate::cli::{Cli, InitArgs};
use serde_json::{Map, Value, json};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// How the provider signs in, as the section will say.
enum Credential {
    /// `ClientSecret: {EnvironmentVar: VAR}`.
    Env(String),
    /// `ClientSecret: {KeyVault: REF}` (empty: the default secret name).
    KeyVault(String),
    /// `ClientSecret: "..."` in the file.
    Literal(secgraph::Secret),
    /// `UserName: UPN` (delegated sign-in).
    User(String),
}

pub(crate) fn run(cli: &Cli, a: &InitArgs) -> anyhow::Result<()> {
    let path = a
        .path
        .clone()
        .or_else(|| cli.config.clone())
        .or_else(|| std::env::var_os("MSTICPYCONFIG").filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("msticpyconfig.yaml"));
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let ask = |label: &str| -> anyhow::Result<String> {
        if !interactive {
            anyhow::bail!(UsageError(format!(
                "config init: {label} is needed; give it as a flag (see `secgraph config init --help`)"
            )));
        }
        eprint!("{label}: ");
        std::io::stderr().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim().to_string())
    };
    let tenant = match &cli.conn.tenant_id {
        Some(t) => t.clone(),
        None => ask("Tenant id or domain (--tenant-id)")?,
    };
    let client = match &cli.conn.client_id {
        Some(c) => c.clone(),
        None => ask("Application (client) id (--client-id)")?,
    };
    anyhow::ensure!(
        !tenant.is_empty() && !client.is_empty(),
        UsageError("config init: the tenant and the client id cannot be empty".into())
    );
    let chosen = [
        a.secret_env.is_some(),
        a.secret_keyvault.is_some(),
        a.secret_stdin,
        cli.conn.username.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    anyhow::ensure!(
        chosen <= 1,
        UsageError("config init: choose one of --secret-env, --secret-keyvault, --secret-stdin and --username".into())
    );
    let credential = if let Some(var) = &a.secret_env {
        Credential::Env(var.clone())
    } else if let Some(r) = &a.secret_keyvault {
        Credential::KeyVault(r.clone())
    } else if a.secret_stdin {
        Credential::Literal(read_secret(false)?)
    } else if let Some(u) = &cli.conn.username {
        Credential::User(u.clone())
    } else {
        if !interactive {
            anyhow::bail!(UsageError(
                "config init: say how the app signs in: --secret-env VAR, --secret-keyvault [VAULT/NAME], --secret-stdin \
                 or --username UPN"
                    .into()
            ));
        }
        eprintln!(
            "How should the client secret be kept?\n  1) in an environment variable (recommended)\n  2) in Key Vault\n  \
             3) in the settings file (readable by you only)\n  4) no secret: sign in as a user"
        );
        match ask("Choice [1-4]")?.as_str() {
            "" | "1" => Credential::Env(match ask("Variable name [MSGRAPH_CLIENT_SECRET]")? {
                v if v.is_empty() => "MSGRAPH_CLIENT_SECRET".into(),
                v => v,
            }),
            "2" => Credential::KeyVault(ask("Vault/secret name (empty: the default name in KeyVault.VaultName)")?),
            "3" => Credential::Literal(read_secret(true)?),
            "4" => Credential::User(ask("User principal name")?),
            other => anyhow::bail!(UsageError(format!("config init: '{other}' is not one of 1-4"))),
        }
    };
    let written = write_section(&path, a, &tenant, &client, &credential)?;
    let key = section_key(a.name.as_deref());
    let how = match &credential {
        Credential::Env(v) => format!("the client secret is read from ${v} when connecting"),
        Credential::KeyVault(_) => "the client secret is read from Key Vault when connecting".into(),
        Credential::Literal(_) => "the client secret is in the file (made readable by you only)".into(),
        Credential::User(u) => format!("signs in as {u} (browser or device code; `secgraph login`)"),
    };
    eprintln!("Wrote DataProviders.{key} to {} — {how}.", path.display());
    if let Some(bak) = written {
        eprintln!("The previous file is kept as {} (comments are not carried over).", bak.display());
    }
    eprintln!("Check it with: secgraph --config {} config check", path.display());
    Ok(())
}

fn section_key(name: Option<&str>) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case("default")) {
        Some(n) => format!("MicrosoftGraph-{n}"),
        None => "MicrosoftGraph".into(),
    }
}

/// Reads a secret without echo (a terminal) or as the first line of standard input.
fn read_secret(prompt: bool) -> anyhow::Result<secgraph::Secret> {
    let text = if std::io::stdin().is_terminal() {
        if prompt {
            eprint!("Client secret (not shown): ");
        }
        secgraph::Secret::new(rpassword_line()?)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        secgraph::Secret::new(line.trim_end_matches(['\r', '\n']).to_string())
    };
    anyhow::ensure!(!text.expose().is_empty(), UsageError("config init: the secret is empty".into()));
    Ok(text)
}

/// One line from the terminal with echo off.
fn rpassword_line() -> anyhow::Result<String> {
    Ok(console::Term::stderr().read_secure_line()?)
}

/// Writes (or replaces) the section; returns the backup's path when an existing file was changed.
fn write_section(path: &Path, a: &InitArgs, tenant: &str, client: &str, credential: &Credential) -> anyhow::Result<Option<PathBuf>> {
    let key = section_key(a.name.as_deref());
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(secgraph::Error::output_from(format!("cannot read {}", path.display()), e).into()),
    };
    let mut doc: Value = match &existing {
        None => json!({}),
        Some(text) => serde_saphyr::from_str::<Value>(text)
            .map_err(|e| UsageError(format!("config init: {} is not YAML this can edit: {e}", path.display())))?,
    };
    if doc.is_null() {
        doc = json!({});
    }
    let Some(root) = doc.as_object_mut() else {
        anyhow::bail!(UsageError(format!("config init: {} is not a mapping of settings", path.display())));
    };
    let has_section = root.get("DataProviders").and_then(|d| d.get(&key)).is_some();
    if existing.is_some() && !a.force {
        anyhow::bail!(UsageError(format!(
            "config init: {} exists{}; --force changes it (the old file is kept as .bak)",
            path.display(),
            if has_section {
                format!(" and has DataProviders.{key}")
            } else {
                String::new()
            }
        )));
    }
    let mut args = Map::new();
    args.insert("TenantId".into(), json!(tenant));
    args.insert("ClientId".into(), json!(client));
    match credential {
        Credential::Env(v) => {
            args.insert("ClientSecret".into(), json!({ "EnvironmentVar": v }));
        }
        Credential::KeyVault(r) => {
            args.insert("ClientSecret".into(), json!({ "KeyVault": r }));
        }
        Credential::Literal(s) => {
            args.insert("ClientSecret".into(), json!(s.expose()));
        }
        Credential::User(u) => {
            args.insert("UserName".into(), json!(u));
        }
    }
    let providers = root.entry("DataProviders").or_insert_with(|| json!({}));
    let Some(providers) = providers.as_object_mut() else {
        anyhow::bail!(UsageError(format!(
            "config init: DataProviders in {} is not a mapping",
            path.display()
        )));
    };
    providers.insert(key, json!({ "Args": Value::Object(args) }));
    if let Credential::KeyVault(r) = credential
        && !root.contains_key("KeyVault")
    {
        let vault = a
            .vault_name
            .clone()
            .or_else(|| r.split_once('/').map(|(v, _)| v.to_string()))
            .ok_or_else(|| {
                UsageError("config init: Key Vault needs a vault: --vault-name VAULT, or --secret-keyvault VAULT/NAME".into())
            })?;
        root.insert("KeyVault".into(), json!({ "VaultName": vault, "TenantId": tenant }));
    }
    let text = serde_saphyr::to_string(&doc).map_err(|e| secgraph::Error::output_from("YAML", e))?;
    // The old file's permissions carry over (to its backup too: it may hold other secrets); a new secret makes the
    // file owner-only whatever it was.
    let old_mode = existing.as_ref().and_then(|_| file_mode(path));
    let backup = match &existing {
        Some(_) => {
            let bak = PathBuf::from(format!("{}.bak", path.display()));
            std::fs::copy(path, &bak).map_err(|e| secgraph::Error::output_from(format!("cannot write {}", bak.display()), e))?;
            Some(bak)
        }
        None => None,
    };
    let mode = match (old_mode, matches!(credential, Credential::Literal(_))) {
        (Some(m), true) => m & 0o700,
        (Some(m), false) => m,
        (None, true) => 0o600,
        (None, false) => 0o644,
    };
    write_file(path, text.as_bytes(), mode)?;
    Ok(backup)
}

/// The permission bits of a file (Unix), if it can be read.
fn file_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o777)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Writes through a temporary file and a rename, with permission bits `mode` (Unix).
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("msticpyconfig.yaml")
    ));
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(mode & 0o600);
    }
    let mut f = o
        .open(&tmp)
        .map_err(|e| secgraph::Error::output_from(format!("cannot write {}", tmp.display()), e))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    std::fs::rename(&tmp, path).map_err(|e| secgraph::Error::output_from(format!("cannot write {}", path.display()), e))?;
    Ok(())
}
