//! Malformed and hostile settings: each gets an error that names the problem, and nothing panics.

use secgraph::config::Settings;
use secgraph::connect::{ConnectOptions, vault_references};

/// Everything the library does with a settings file short of the network.
fn exercise(s: &Settings) -> Result<(), String> {
    let e = |e: secgraph::Error| e.to_string();
    s.azure().map_err(e)?;
    s.keyvault().map_err(e)?;
    s.proxy().map_err(e)?;
    s.http_timeout().map_err(e)?;
    s.query_folders().map_err(e)?;
    vault_references(s).map_err(e)?;
    let az = s.azure().map_err(e)?;
    if let Some(c) = az.cloud {
        secgraph::config::Cloud::named(&c).map_err(e)?;
    }
    for i in std::iter::once(None).chain(s.instances().into_iter().map(Some)) {
        let args = s.provider_args(i.as_deref()).map_err(e)?;
        for (_, path, r) in &args.values {
            if !matches!(r, secgraph::config::SecretRef::KeyVault(_)) {
                r.resolve(path).map_err(e)?;
            }
        }
    }
    Ok(())
}

const GOOD: &str = "DataProviders:\n  MicrosoftGraph:\n    Args:\n      TenantId: t\n      ClientId: c\n      ClientSecret: s\n";

#[test]
fn fifty_malformed_files_each_name_their_problem() {
    let cases: Vec<(String, &str)> = vec![
        ("DataProviders: [1, 2".into(), "line"),
        ("DataProviders:\n  MicrosoftGraph:\n   Args: {TenantId: t\n".into(), "line"),
        ("\t- tab\n".into(), "mapping of sections"),
        ("a: b: c\n".into(), "line"),
        ("- 1\n- 2\n".into(), "mapping of sections"),
        ("just text\n".into(), "mapping of sections"),
        ("42\n".into(), "mapping of sections"),
        ("DataProviders: 5\n".into(), "DataProviders"),
        ("DataProviders: [a]\n".into(), "DataProviders"),
        ("DataProviders: text\n".into(), "DataProviders"),
        ("DataProviders:\n  MicrosoftGraph: [1]\n".into(), "DataProviders.MicrosoftGraph"),
        ("DataProviders:\n  MicrosoftGraph: 3\n".into(), "DataProviders.MicrosoftGraph"),
        (
            "DataProviders:\n  MicrosoftGraph:\n    Args: 3\n".into(),
            "DataProviders.MicrosoftGraph.Args",
        ),
        (
            "DataProviders:\n  MicrosoftGraph:\n    Args: [a, b]\n".into(),
            "DataProviders.MicrosoftGraph.Args",
        ),
        (
            "DataProviders:\n  MicrosoftGraph:\n    Args:\n      ClientSecret: {Vault: x}\n".into(),
            "unknown value form 'Vault'",
        ),
        (
            "DataProviders:\n  MicrosoftGraph:\n    Args:\n      ClientSecret: {EnvironmentVar: ''}\n".into(),
            "EnvironmentVar needs",
        ),
        (
            "DataProviders:\n  MicrosoftGraph:\n    Args:\n      ClientSecret: {EnvironmentVar: [a]}\n".into(),
            "EnvironmentVar needs",
        ),
        (
            "DataProviders:\n  MicrosoftGraph:\n    Args:\n      ClientSecret: [a]\n".into(),
            "found a list",
        ),
        (
            "DataProviders:\n  MicrosoftGraph:\n    Args:\n      ClientSecret: {a: 1, b: 2}\n".into(),
            "one key",
        ),
        (
            "DataProviders:\n  MicrosoftGraph:\n    Args:\n      ClientSecret: {KeyVault: [x]}\n".into(),
            "KeyVault takes",
        ),
        (
            "DataProviders:\n  MicrosoftGraph:\n    Args:\n      ClientSecret: {EnvironmentVar: SECGRAPH_SURELY_UNSET_1}\n".into(),
            "SECGRAPH_SURELY_UNSET_1",
        ),
        (
            "DataProviders:\n  MicrosoftGraph:\n    Args:\n      TenantId: {EnvironmentVar: SECGRAPH_SURELY_UNSET_2}\n".into(),
            "TenantId",
        ),
        (
            "DataProviders:\n  MicrosoftGraph:\n    Args:\n      ClientSecret: {KeyVault: }\n".into(),
            "needs a vault",
        ),
        (
            "DataProviders:\n  MicrosoftGraph:\n    Args:\n      ClientSecret: {KeyVault: bad!vault/x}\n".into(),
            "not a vault name",
        ),
        (
            format!(
                "DataProviders:\n  MicrosoftGraph:\n    Args:\n      ClientSecret: {{KeyVault: v/{}}}\n",
                "x".repeat(200)
            ),
            "longer than 127",
        ),
        (
            "DataProviders:\n  MicrosoftGraph-A:\n    Args: {TenantId: t}\n".into(),
            "choose an instance",
        ),
        ("SecurityGraphApp: 7\n".into(), "SecurityGraphApp"),
        ("SecurityGraphApp:\n  Args: yes\n".into(), "SecurityGraphApp.Args"),
        ("Azure: 1\n".into(), "Azure"),
        ("Azure: [global]\n".into(), "Azure"),
        ("Azure:\n  cloud: mars\n".into(), "unknown cloud 'mars'"),
        ("Azure:\n  cloud: [global]\n".into(), "Azure.cloud"),
        ("Azure:\n  cloud: 3\n".into(), "Azure.cloud"),
        ("Azure:\n  resource_manager_url: {a: b}\n".into(), "Azure.resource_manager_url"),
        ("Azure:\n  ca_certificates: 5\n".into(), "Azure.ca_certificates"),
        ("Azure:\n  ca_certificates: [1]\n".into(), "Azure.ca_certificates[0]"),
        ("Azure:\n  keyvault_url: https://no-placeholder/\n".into(), "Azure.keyvault_url"),
        ("Azure:\n  keyvault_url: 'not a url {vault}'\n".into(), "Azure.keyvault_url"),
        ("Azure:\n  auth_methods: {a: 1}\n".into(), "Azure.auth_methods"),
        ("Azure:\n  auth_methods: [1, 2]\n".into(), "Azure.auth_methods"),
        ("KeyVault: 3\n".into(), "KeyVault"),
        ("KeyVault:\n  VaultName: [a]\n".into(), "KeyVault.VaultName"),
        ("KeyVault:\n  UseKeyring: maybe\n".into(), "KeyVault.UseKeyring"),
        ("KeyVault:\n  AuthnType: {x: 1}\n".into(), "KeyVault.AuthnType"),
        ("KeyVault:\n  TenantId: 5.5\n".into(), "KeyVault.TenantId"),
        ("msticpy: 1\n".into(), "msticpy"),
        ("msticpy:\n  http_timeout: -1\n".into(), "msticpy.http_timeout"),
        ("msticpy:\n  http_timeout: fast\n".into(), "msticpy.http_timeout"),
        ("msticpy:\n  http_timeout: {connect: 0}\n".into(), "msticpy.http_timeout"),
        ("msticpy:\n  Proxies:\n    https: {UserName: u}\n".into(), "needs a Url"),
        ("msticpy:\n  Proxies:\n    https: {Url: 'not a url'}\n".into(), "is not a URL"),
        (
            "msticpy:\n  Proxies:\n    https: {Url: 'ftp://proxy.example'}\n".into(),
            "http(s) proxy URL",
        ),
        (
            "msticpy:\n  Proxies:\n    https: {Url: 'http://p.example:8080', Password: {KeyVault: x}}\n".into(),
            "cannot come from Key Vault",
        ),
        (
            "msticpy:\n  Proxies:\n    https: {Url: 'http://p.example:8080', Password: {EnvironmentVar: SECGRAPH_SURELY_UNSET_3}}\n".into(),
            "SECGRAPH_SURELY_UNSET_3",
        ),
        (
            "msticpy:\n  Proxies:\n    https: {Url: 'http://p.example:8080', UserName: [u]}\n".into(),
            "UserName",
        ),
        ("QueryDefinitions:\n  Custom: 5\n".into(), "QueryDefinitions.Custom"),
        ("QueryDefinitions:\n  Custom: [1]\n".into(), "QueryDefinitions.Custom"),
        ("QueryDefinitions: [a]\n".into(), "QueryDefinitions"),
        ("a: &x [*x]\n".into(), "line"),
        ("a: *undefined\n".into(), "line"),
        ("a: !!binary 'zz'\nDataProviders: 1\n".into(), ""),
    ];
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let mut wrong = Vec::new();
    for (text, want) in cases {
        let result = Settings::from_yaml(&text, "bad.yaml")
            .map_err(|e| e.to_string())
            .and_then(|s| exercise(&s));
        match result {
            Ok(()) => wrong.push(format!("accepted: {text:?}")),
            Err(m) if !m.contains(want) => wrong.push(format!("{text:?}: {m}")),
            Err(_) => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The well-formed baseline passes.
    exercise(&Settings::from_yaml(GOOD, "good.yaml").unwrap()).unwrap();
}

#[test]
fn huge_and_explosive_files_are_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.yaml");
    std::fs::write(&big, format!("{GOOD}# {}\n", "x".repeat(3 * 1024 * 1024))).unwrap();
    let e = Settings::load(&big, secgraph::config::ConfigSource::Explicit)
        .unwrap_err()
        .to_string();
    assert!(e.contains("refused"), "{e}");
    let mut bomb = String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..40 {
        bomb.push_str(&format!("l{i}: &l{i} [{}]\n", vec![format!("*l{}", i - 1); 9].join(", ")));
    }
    let t = std::time::Instant::now();
    assert!(Settings::from_yaml(&bomb, "bomb.yaml").is_err());
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(Settings::from_yaml(&format!("a: {deep}\n"), "deep.yaml").is_err());
}

/// A small deterministic fuzzer: random mutations of real settings files never panic, and every error names a
/// file or a setting. Bounded: a few thousand inputs.
#[test]
fn mutated_settings_never_panic() {
    let seeds = [
        GOOD.to_string(),
        "Azure:\n  cloud: usgov\n  ca_certificates: [a.pem]\nKeyVault:\n  VaultName: v\n  UseKeyring: true\nDataProviders:\n  MicrosoftGraph-X:\n    Args:\n      TenantId: {EnvironmentVar: T}\n      ClientSecret: {KeyVault: v/s}\nmsticpy:\n  http_timeout: {connect: 3, read: 9}\n  Proxies:\n    https: {Url: 'http://p:1', UserName: u, Password: pw}\n".to_string(),
    ];
    let alphabet: Vec<char> = ":-{}[]&*!'\"\n #|>abc123KeyVault".chars().collect();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let mut s: Vec<char> = seeds[(next() % 2) as usize].chars().collect();
        for _ in 0..(1 + next() % 6) {
            let pos = (next() as usize) % (s.len() + 1);
            match next() % 3 {
                0 if pos < s.len() => {
                    s.remove(pos);
                }
                1 => s.insert(pos, alphabet[(next() as usize) % alphabet.len()]),
                _ if pos < s.len() => s[pos] = alphabet[(next() as usize) % alphabet.len()],
                _ => {}
            }
        }
        let text: String = s.into_iter().collect();
        let r = std::panic::catch_unwind(|| Settings::from_yaml(&text, "fuzz.yaml").map(|s| exercise(&s)));
        assert!(r.is_ok(), "panicked on {text:?}");
    }
    let _ = ConnectOptions::default();
}
