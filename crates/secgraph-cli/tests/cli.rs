//! The `secgraph` binary end to end: the emulator as a separate process, settings written by it, queries run
//! from another process, exit codes and error text.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::{BIN, emulator};
const DEMO_SECRET: &str = "demo-secret-for-the-local-emulator-only";

fn secgraph(cfg: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("MSTICPYCONFIG", cfg)
        .env_remove("SECGRAPH_CLIENT_SECRET")
        .env_remove("SECGRAPH_CONNECTION_STRING")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn emulator_in_one_process_query_in_another_prints_every_alert_as_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let (_emu, cfg) = emulator(dir.path(), &["--alerts", "130", "--page-size", "25"]);
    let out = secgraph(&cfg, &["query", "Alerts.list", "--start", "-31d", "-o", "jsonl"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let ids: Vec<String> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 130);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 130);
    assert!(text(&out.stderr).contains("130 row(s) in 6 page(s)"), "{}", text(&out.stderr));

    // The table and CSV views of the same query, and --out.
    let out = secgraph(&cfg, &["query", "Alerts.list", "--start", "-31d", "-p", "severity=high,medium"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("severity"));
    let csv = dir.path().join("a.csv");
    let out = secgraph(
        &cfg,
        &[
            "query",
            "Alerts.list",
            "--start",
            "-31d",
            "-o",
            "csv",
            "--out",
            csv.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let body = std::fs::read_to_string(&csv).unwrap();
    assert!(body.lines().next().unwrap().contains("evidence"));
    assert_eq!(csv::Reader::from_reader(body.as_bytes()).records().count(), 130);
}

#[test]
fn exit_codes_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (_emu, cfg) = emulator(dir.path(), &["--alerts", "20"]);

    let out = secgraph(&cfg, &["connect", "--client-secret", "wrong-hunter2"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("AADSTS7000215") && err.contains("invalid_client"), "{err}");
    assert!(!err.contains("hunter2"));

    let out = secgraph(&cfg, &["exec", "/security/alerts_v2?$filter=severity eq"]);
    assert_eq!(out.status.code(), Some(5));
    let err = text(&out.stderr);
    assert!(err.contains("HTTP 400 BadRequest") && err.contains("request-id"), "{err}");

    let out = secgraph(&cfg, &["query", "Alerts.lst"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("Did you mean 'Alerts.list'"), "{}", text(&out.stderr));

    let out = secgraph(&cfg, &["query", "Alerts.list", "--start", "last tuesday"]);
    assert_eq!(out.status.code(), Some(2));

    let out = secgraph(&cfg, &["--instance", "Nope", "connect"]);
    assert_eq!(out.status.code(), Some(3));

    let out = Command::new(BIN)
        .args(["--config", "/nonexistent/secgraph.yaml", "connect"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("/nonexistent/secgraph.yaml"));

    let out = Command::new(BIN).args(["frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));

    let out = secgraph(&cfg, &["--instance", "NoRoles", "query", "Incidents.list"]);
    assert_eq!(out.status.code(), Some(5));
    assert!(text(&out.stderr).contains("403 Forbidden"));
}

#[test]
fn connect_reports_without_secrets_even_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let (_emu, cfg) = emulator(dir.path(), &["--alerts", "20"]);
    for args in [
        vec!["-vvv", "connect"],
        vec!["-vvv", "query", "Alerts.list", "-o", "json"],
        vec!["-vvv", "--instance", "Fabrikam", "connect"],
        vec!["-vvv", "exec", "/security/incidents?$top=5"],
    ] {
        let out = secgraph(&cfg, &args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            !all.contains(DEMO_SECRET) && !all.contains("fabrikam-demo-secret"),
            "{args:?} printed a secret"
        );
        assert!(!all.contains("eyJ"), "{args:?} printed a token");
    }
    let out = secgraph(&cfg, &["connect"]);
    let s = text(&out.stdout);
    assert!(
        s.contains("8f3b9a52-6c1d-4e2f-9a7b-0c5d3e1f2a4b") && s.contains("SecurityAlert.ReadWrite.All"),
        "{s}"
    );

    // The secret passed through the environment stays hidden in --help output too.
    let out = Command::new(BIN)
        .arg("--help")
        .env("SECGRAPH_CLIENT_SECRET", "env-hunter2")
        .output()
        .unwrap();
    assert!(!text(&out.stdout).contains("env-hunter2"));
}

#[test]
fn embedded_emulator_needs_no_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .env_remove("MSTICPYCONFIG")
        .env("HOME", dir.path())
        .args(["--emulator", "query", "Incidents.list", "-o", "jsonl"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).lines().count() > 0);
    let out = Command::new(BIN).args(["queries", "alerts"]).output().unwrap();
    assert!(text(&out.stdout).contains("Alerts.list") && text(&out.stdout).contains("SecurityGraphAlert.list_alerts"));
    let out = Command::new(BIN)
        .args([
            "--emulator",
            "query",
            "Alerts.list",
            "--start",
            "2024-01-01T00:00:00+02:00",
            "--print",
        ])
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains("createdDateTime ge 2023-12-31T22:00:00Z"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn delegated_device_sign_in_is_cached_until_logout() {
    let dir = tempfile::tempdir().unwrap();
    let (_emu, cfg) = emulator(
        dir.path(),
        &["--alerts", "10", "--auto-approve", "analyst@contoso-demo.onmicrosoft.com"],
    );
    let cache = dir.path().join("tokens").join("cache.json");
    let cache_s = cache.to_str().unwrap();
    let out = secgraph(
        &cfg,
        &[
            "--instance",
            "Delegated",
            "--auth-type",
            "device",
            "--token-cache",
            cache_s,
            "connect",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("enter the code"),
        "the device-code message is shown: {}",
        text(&out.stderr)
    );
    let s = text(&out.stdout);
    assert!(
        s.contains("account:     analyst@contoso-demo.onmicrosoft.com") && s.contains("delegated user"),
        "{s}"
    );

    let out = secgraph(
        &cfg,
        &[
            "--instance",
            "Delegated",
            "--auth-type",
            "device",
            "--token-cache",
            cache_s,
            "-vv",
            "query",
            "Alerts.list",
            "-o",
            "jsonl",
            "--start",
            "-31d",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("enter the code"), "a warm cache signs in silently");
    assert_eq!(text(&out.stdout).lines().count(), 10);
    let body = std::fs::read_to_string(&cache).unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    for token in body.split('"').filter(|t| t.len() > 40) {
        assert!(!all.contains(token), "a cached token was printed");
    }

    let out = secgraph(&cfg, &["--instance", "Delegated", "--token-cache", cache_s, "logout"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("removed 1"));
}

#[test]
fn updates_hunting_and_query_details() {
    let dir = tempfile::tempdir().unwrap();
    let (_emu, cfg) = emulator(dir.path(), &["--alerts", "30"]);
    let out = secgraph(&cfg, &["query", "Alerts.list", "--start", "-31d", "-o", "jsonl"]);
    let first: serde_json::Value = serde_json::from_str(text(&out.stdout).lines().next().unwrap()).unwrap();
    let id = first["id"].as_str().unwrap();

    let out = secgraph(
        &cfg,
        &[
            "alert",
            "update",
            id,
            "--status",
            "Resolved",
            "--classification",
            "truepositive",
            "--determination",
            "malware",
            "--comment",
            "contained",
            "--dry-run",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    assert!(
        plan.contains("PATCH /security/alerts_v2/")
            && plan.contains("\"status\":\"resolved\"")
            && plan.contains("\"classification\":\"truePositive\""),
        "{plan}"
    );
    assert!(plan.contains("/comments"), "{plan}");
    let out = secgraph(&cfg, &["alert", "update", id, "--status", "closed"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("invalid value 'closed'") && text(&out.stderr).contains("new, inProgress, resolved"),
        "{}",
        text(&out.stderr)
    );

    let out = secgraph(
        &cfg,
        &[
            "alert",
            "update",
            id,
            "--status",
            "resolved",
            "--comment",
            "contained",
            "-o",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let item: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(item["status"], "resolved");
    assert_eq!(item["comments"].as_array().unwrap().last().unwrap()["comment"], "contained");

    let out = secgraph(
        &cfg,
        &[
            "query",
            "Hunting.run",
            "-p",
            "query=AlertInfo | summarize n = count()",
            "--start",
            "-31d",
            "-o",
            "jsonl",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "{\"n\":30}");
    let out = secgraph(&cfg, &["query", "Alerts.list_for_user", "-p", "user=x", "--print"]);
    assert!(
        text(&out.stdout).starts_with("POST /security/runHuntingQuery"),
        "{}",
        text(&out.stdout)
    );

    let out = secgraph(&cfg, &["queries", "show", "Alerts.list"]);
    assert!(out.status.success());
    let s = text(&out.stdout);
    assert!(
        s.contains("severity") && s.contains("list") && s.contains("Example: secgraph query Alerts.list"),
        "{s}"
    );
    let out = secgraph(
        &cfg,
        &["exec", "/security/alerts_v2?$top=2", "--all", "--limit", "5", "-o", "jsonl"],
    );
    assert_eq!(text(&out.stdout).lines().count(), 5, "--limit stops paging");
    assert!(text(&out.stderr).contains("5 row(s) in 3 page(s)"), "{}", text(&out.stderr));
    // A $top written by a person is that many rows, in one request; --all reads every page.
    let out = secgraph(&cfg, &["exec", "/security/alerts_v2?$top=5", "-o", "jsonl"]);
    assert_eq!(text(&out.stdout).lines().count(), 5, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("5 row(s) in 1 page(s)"), "{}", text(&out.stderr));
    let out = secgraph(&cfg, &["exec", "/security/alerts_v2?$top=5", "--all", "-o", "jsonl"]);
    assert!(text(&out.stdout).lines().count() > 5, "{}", text(&out.stderr));
    let out = secgraph(&cfg, &["queries", "hunting"]);
    assert!(text(&out.stdout).contains("Hunting.process_by_name"));
}

/// Settings whose instances take the demo secret in every form: literal, environment variable, and Key Vault.
fn secret_forms_config(emulator_config: &Path) -> String {
    let base = std::fs::read_to_string(emulator_config).unwrap();
    let azure = &base[base.find("Azure:").unwrap()..base.find("KeyVault:").unwrap()];
    let ids = "      TenantId: 8f3b9a52-6c1d-4e2f-9a7b-0c5d3e1f2a4b\n      ClientId: 5d2f1c3b-8a7e-4b6d-9c0f-1e2a3b4c5d6e\n";
    let mut y = format!(
        "{azure}KeyVault:\n  VaultName: demo-vault\n  TenantId: 8f3b9a52-6c1d-4e2f-9a7b-0c5d3e1f2a4b\n  AuthnType: devicecode\n  UseKeyring: true\nDataProviders:\n"
    );
    for (name, secret) in [
        ("MicrosoftGraph", format!("'{DEMO_SECRET}'")),
        ("MicrosoftGraph-Env", "{EnvironmentVar: SECGRAPH_TEST_GRAPH_SECRET}".into()),
        ("MicrosoftGraph-KvDefault", "{KeyVault: graph-client-secret}".into()),
        ("MicrosoftGraph-KvPath", "{KeyVault: demo-vault/graph-client-secret}".into()),
    ] {
        y.push_str(&format!("  {name}:\n    Args:\n{ids}      ClientSecret: {secret}\n"));
    }
    y
}

/// Runs each command at trace level against settings that hold secrets in every form, and checks that no secret,
/// token or cached value reaches stdout or stderr.
fn no_secret_in_the_output_of(runs: &[&[&str]]) {
    let dir = tempfile::tempdir().unwrap();
    let (_emu, cfg) = emulator(
        dir.path(),
        &["--alerts", "10", "--auto-approve", "analyst@contoso-demo.onmicrosoft.com"],
    );
    let settings = dir.path().join("forms.yaml");
    std::fs::write(&settings, secret_forms_config(&cfg)).unwrap();
    let cache_home = dir.path().join("cache-home");
    let log = dir.path().join("run.log");
    let mut all = String::new();
    for args in runs {
        let out = Command::new(BIN)
            .arg("-vvv")
            .args(*args)
            .env("MSTICPYCONFIG", &settings)
            .env("SECGRAPH_TEST_GRAPH_SECRET", DEMO_SECRET)
            .env("XDG_CACHE_HOME", &cache_home)
            // No terminal here: the emulator's --auto-approve is the person who signs in.
            .env("SECGRAPH_PROMPT", "always")
            .env_remove("SECGRAPH_CLIENT_SECRET")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let both = format!("{}{}", text(&out.stdout), text(&out.stderr));
        std::fs::write(&log, &both).unwrap();
        all.push_str(&std::fs::read_to_string(&log).unwrap());
        if *args == ["config", "check", "--resolve"] {
            let s = text(&out.stdout);
            assert!(
                s.contains("environment variable SECGRAPH_TEST_GRAPH_SECRET") && s.contains("demo-vault/graph-client-secret: resolves"),
                "{s}"
            );
            assert!(s.contains("literal value in the file"), "{s}");
        }
    }
    assert!(!all.contains(DEMO_SECRET), "the client secret was printed");
    assert!(!all.contains("eyJ"), "a token was printed");
    // Nor anything from the token cache (access and refresh tokens) or the secret cache.
    for f in walk(&cache_home) {
        let body = std::fs::read_to_string(&f).unwrap_or_default();
        for tok in body.split('"').filter(|t| t.len() > 30) {
            assert!(!all.contains(tok), "a cached value from {} was printed", f.display());
        }
    }
}

#[test]
fn no_secret_reaches_any_output_at_trace_level_when_signing_in() {
    no_secret_in_the_output_of(&[
        &["connect"],
        &["--instance", "Env", "connect"],
        &["--instance", "KvDefault", "connect"],
    ]);
}

#[test]
fn no_secret_reaches_any_output_at_trace_level_when_querying() {
    no_secret_in_the_output_of(&[
        &["--instance", "KvPath", "query", "Alerts.list", "-o", "json", "--start", "-31d"],
        &["--instance", "KvDefault", "exec", "/security/incidents?$top=3", "-o", "csv"],
        &[
            "--instance",
            "Env",
            "query",
            "Hunting.run",
            "-p",
            "query=AlertInfo | take 1",
            "-o",
            "jsonl",
        ],
        &["queries"],
        &["alert", "update", "x", "--status", "resolved", "--dry-run"],
    ]);
}

#[test]
fn no_secret_reaches_any_output_at_trace_level_in_settings() {
    no_secret_in_the_output_of(&[&["config", "check", "--resolve"], &["config", "instances"]]);
}

#[test]
fn no_secret_reaches_any_output_at_trace_level_in_caches() {
    no_secret_in_the_output_of(&[
        &["--instance", "KvDefault", "connect"],
        &["--instance", "KvDefault", "secrets", "refresh"],
        &["secrets", "clear"],
        &["logout", "--all"],
    ]);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn emulator_directory_file_seeds_tenants_apps_users_and_vaults() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("directory.yaml");
    std::fs::write(
        &seed,
        "tenants:\n  - id: 11111111-2222-3333-4444-555555555555\n    domain: example.onmicrosoft.com\n    users:\n      - {upn: hunter@example.onmicrosoft.com, display_name: Hunter, permissions: [SecurityAlert.Read.All]}\n    apps:\n      - client_id: 66666666-7777-8888-9999-000000000000\n        display_name: my pipeline\n        secret: pipeline-secret-value\n        roles: [SecurityAlert.Read.All]\n        delegated: [SecurityAlert.Read.All]\nvaults:\n  - name: example-vault\n    tenant: example.onmicrosoft.com\n    access: {hunter@example.onmicrosoft.com: [get, list]}\n    secrets:\n      pipeline-secret: [old-value, pipeline-secret-value]\n      retired: gone\n    disabled: [retired]\n",
    )
    .unwrap();
    let (_emu, cfg) = emulator(
        dir.path(),
        &[
            "--alerts",
            "5",
            "--directory",
            seed.to_str().unwrap(),
            "--auto-approve",
            "hunter@example.onmicrosoft.com",
        ],
    );
    let base = std::fs::read_to_string(&cfg).unwrap();
    let azure = &base[base.find("Azure:").unwrap()..base.find("KeyVault:").unwrap()];
    let settings = dir.path().join("mine.yaml");
    std::fs::write(
        &settings,
        format!("{azure}KeyVault:\n  VaultName: example-vault\n  TenantId: 11111111-2222-3333-4444-555555555555\n  AuthnType: devicecode\nDataProviders:\n  MicrosoftGraph:\n    Args:\n      TenantId: example.onmicrosoft.com\n      ClientId: 66666666-7777-8888-9999-000000000000\n      ClientSecret: {{KeyVault: pipeline-secret}}\n"),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["connect"])
        .env("MSTICPYCONFIG", &settings)
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .env("SECGRAPH_PROMPT", "always")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("my pipeline") && s.contains("SecurityAlert.Read.All"), "{s}");
    assert!(!format!("{s}{}", text(&out.stderr)).contains("pipeline-secret-value"));
}

#[test]
fn emulator_flags_are_checked() {
    let out = Command::new(BIN).args(["emulator", "--faults", "graph:418"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown fault '418'"), "{}", text(&out.stderr));
    let out = Command::new(BIN).args(["emulator", "--bind", "0.0.0.0:0"]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("loopback"), "{}", text(&out.stderr));
}

#[test]
fn hostile_paths_empty_times_and_unread_secrets_exit_with_the_right_code() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .current_dir(dir.path())
            .env_remove("MSTICPYCONFIG")
            .env("HOME", dir.path())
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .args(args)
            .output()
            .unwrap()
    };
    for args in [
        vec!["--emulator", "exec", "\\\\127.0.0.1:9\\x"],
        vec!["--emulator", "exec", "/\\\\127.0.0.1:9\\x"],
        vec![
            "--emulator",
            "query",
            "Alerts.list",
            "--start",
            "-1d",
            "-p",
            "path=\\\\127.0.0.1:9\\x",
        ],
        vec!["--emulator", "query", "Alerts.list", "--start", ""],
        vec!["--emulator", "query", "Alerts.list", "--start", "+8000y"],
        vec!["--emulator", "query", "Alerts.list", "--start", "-2100y"],
    ] {
        let out = run(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("backslashes") || err.contains("'start'"), "{args:?}: {err}");
        assert!(!err.chars().any(|c| c.is_control() && c != '\n'), "{err:?}");
    }

    // A secret that cannot be read is a settings failure (3), not a usage error (2).
    let (_emu, cfg) = emulator(
        dir.path(),
        &["--alerts", "5", "--auto-approve", "analyst@contoso-demo.onmicrosoft.com"],
    );
    let settings = dir.path().join("missing.yaml");
    std::fs::write(
        &settings,
        secret_forms_config(&cfg).replace("demo-vault/graph-client-secret", "demo-vault/no-such-secret"),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--config"])
        .arg(&settings)
        .args(["--instance", "KvPath", "secrets", "refresh"])
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("FAILED"), "{}", text(&out.stdout));
}

#[test]
fn redirected_logs_have_no_colour_and_the_summary_counts_dropped_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let (_emu, cfg) = emulator(dir.path(), &["--alerts", "30", "--faults", "alerts_v2:duplicate-item@nth=1"]);
    let out = secgraph(&cfg, &["-vv", "query", "Alerts.list", "--start", "-31d", "-o", "jsonl"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains('\u{1b}'), "colour codes in a redirected log: {err:?}");
    assert!(err.contains("sent twice were dropped"), "{err}");
    assert_eq!(text(&out.stdout).lines().count(), 30);
}

#[test]
fn queries_list_current_families_first_and_mark_the_retired_api() {
    let out = Command::new(BIN).env_remove("MSTICPYCONFIG").args(["queries"]).output().unwrap();
    let text = text(&out.stdout);
    let first_current = text.find("Alerts.list").unwrap();
    let first_retired = text.find("SecurityGraphAlert.").unwrap();
    assert!(first_current < first_retired, "{text}");
    assert!(text.contains("SecurityGraphAlert.list_alerts (retired API)"), "{text}");
    assert!(!text.contains("Alerts.list (retired API)"));
}

#[test]
fn tsv_completions_man_page_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let tsv = Command::new(BIN)
        .current_dir(dir.path())
        .env_remove("MSTICPYCONFIG")
        .env("HOME", dir.path())
        .args([
            "--emulator",
            "query",
            "Alerts.list",
            "--start",
            "-30d",
            "-o",
            "tsv",
            "--columns",
            "id,severity,title",
        ])
        .output()
        .unwrap();
    assert!(tsv.status.success(), "{}", text(&tsv.stderr));
    let lines: Vec<String> = text(&tsv.stdout).lines().map(str::to_string).collect();
    assert_eq!(lines[0], "id\tseverity\ttitle");
    assert!(
        lines.len() > 10 && lines[1..].iter().all(|l| l.split('\t').count() == 3),
        "{lines:?}"
    );

    for (shell, marker) in [
        ("bash", "_secgraph()"),
        ("zsh", "#compdef secgraph"),
        ("fish", "complete -c secgraph"),
        ("powershell", "secgraph"),
    ] {
        let out = Command::new(BIN).args(["completions", shell]).output().unwrap();
        assert!(out.status.success() && text(&out.stdout).contains(marker), "{shell}");
        assert!(text(&out.stdout).contains("export"), "{shell}: subcommands are completed");
        // clap_complete completes positional values in bash and zsh only.
        if matches!(shell, "bash" | "zsh") {
            assert!(
                text(&out.stdout).contains("Alerts.list_for_host"),
                "{shell}: query names are completed"
            );
        }
    }
    // With settings, their instance names too.
    let dir = tempfile::tempdir().unwrap();
    let (_emu, cfg) = emulator(dir.path(), &["--alerts", "5"]);
    let out = secgraph(&cfg, &["completions", "bash"]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("Fabrikam") && text(&out.stdout).contains("Certificate"),
        "instances are completed"
    );
    let man = Command::new(BIN).arg("man").output().unwrap();
    assert!(man.status.success() && text(&man.stdout).contains(".TH secgraph 1"));
    let v = Command::new(BIN).arg("--version").output().unwrap();
    let v = text(&v.stdout);
    assert!(
        v.starts_with("secgraph 0.") && v.contains('(') && v.trim_end().ends_with(')'),
        "{v}"
    );
}

#[test]
fn login_keeps_a_user_sign_in_and_a_machine_without_a_browser_is_told_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_emu, cfg) = emulator(
        dir.path(),
        &["--alerts", "5", "--auto-approve", "analyst@contoso-demo.onmicrosoft.com"],
    );
    let cache = dir.path().join("tokens.json");
    let cache_s = cache.to_str().unwrap();
    let login = |extra: &[&str], env: &[(&str, &str)]| {
        Command::new(BIN)
            .args(["--instance", "Delegated", "--token-cache", cache_s])
            .args(extra)
            .arg("login")
            .env("MSTICPYCONFIG", &cfg)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("BROWSER")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    // No display and no $BROWSER: the browser flow fails at once and points at the device code.
    let out = login(&["--auth-type", "browser"], &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("no browser") && err.contains("--auth-type device"), "{err}");
    assert!(!cache.exists(), "nothing was kept");

    let out = login(&["--auth-type", "device"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("Signed in as analyst@contoso-demo.onmicrosoft.com") && err.contains(cache_s),
        "{err}"
    );
    assert!(cache.exists());
    // Later commands use the kept sign-in.
    let out = secgraph(&cfg, &["--instance", "Delegated", "--token-cache", cache_s, "connect"]);
    assert!(
        out.status.success() && !text(&out.stderr).contains("enter the code"),
        "{}",
        text(&out.stderr)
    );

    // An app keeps nothing, and says so.
    let out = secgraph(&cfg, &["login"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("nothing is kept"), "{}", text(&out.stderr));
}

#[test]
fn config_init_writes_a_section_refuses_to_overwrite_and_never_echoes_a_secret() {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("msticpyconfig.yaml");
    let f = file.to_str().unwrap();
    let init = |args: &[&str], stdin: &str| {
        let mut child = Command::new(BIN)
            .args(["config", "init", "--path", f])
            .args(args)
            .env_remove("MSTICPYCONFIG")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

    let out = init(
        &[
            "--tenant-id",
            "contoso.onmicrosoft.com",
            "--client-id",
            "c1",
            "--secret-env",
            "MY_GRAPH_SECRET",
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let body = std::fs::read_to_string(&file).unwrap();
    assert!(
        body.contains("MicrosoftGraph:") && body.contains("EnvironmentVar: MY_GRAPH_SECRET"),
        "{body}"
    );
    let check = Command::new(BIN)
        .args(["--config", f, "config", "check"])
        .env("MY_GRAPH_SECRET", "x")
        .output()
        .unwrap();
    assert!(check.status.success() && text(&check.stdout).contains("environment variable MY_GRAPH_SECRET"));

    // An existing file is not changed without --force.
    let secret = "s3cr3t-value-never-shown";
    let out = init(
        &["--name", "Lab", "--tenant-id", "t2", "--client-id", "c2", "--secret-stdin"],
        secret,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), body);

    let out = init(
        &[
            "--name",
            "Lab",
            "--tenant-id",
            "t2",
            "--client-id",
            "c2",
            "--secret-stdin",
            "--force",
        ],
        secret,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stdout).contains(secret) && !text(&out.stderr).contains(secret),
        "the secret is never echoed"
    );
    let body = std::fs::read_to_string(&file).unwrap();
    assert!(
        body.contains("MicrosoftGraph-Lab:") && body.contains(secret) && body.contains("MY_GRAPH_SECRET"),
        "{body}"
    );
    assert_eq!(mode(&file), 0o600, "a file holding a secret is readable by its owner only");
    let bak = dir.path().join("msticpyconfig.yaml.bak");
    assert!(std::fs::read_to_string(&bak).unwrap().contains("MY_GRAPH_SECRET"));

    // Rewriting that file keeps it owner-only (and its backup too), whatever the new section holds.
    let out = init(
        &[
            "--name",
            "Other",
            "--tenant-id",
            "t3",
            "--client-id",
            "c3",
            "--username",
            "a@b.c",
            "--force",
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&bak), 0o600);
    assert!(std::fs::read_to_string(&file).unwrap().contains("UserName: a@b.c"));

    // Scripts get a usage error, not a prompt.
    let out = init(&["--tenant-id", "t"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--client-id"), "{}", text(&out.stderr));
}

#[test]
fn azure_cli_sign_in_uses_the_cli_account_and_never_prints_its_token() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let emu = rt
        .block_on(secgraph_emulator::Emulator::start(secgraph_emulator::EmulatorConfig {
            alerts: 7,
            state_dir: Some(dir.path().join("state")),
            ..Default::default()
        }))
        .unwrap();
    let cfg = dir.path().join("e.yaml");
    std::fs::write(&cfg, emu.msticpy_config()).unwrap();
    let token = emu
        .mint_app_token(secgraph_emulator::DEMO_TENANT_ID, secgraph_emulator::DEMO_CLIENT_ID, 3600)
        .unwrap();
    // A stand-in `az` on PATH: answers `account get-access-token` as the real one does, and notes its arguments.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = dir.path().join("az-args.txt");
    let az = bin.join("az");
    let expires = chrono::Utc::now().timestamp() + 3600;
    std::fs::write(
        &az,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\nprintf '{{\"accessToken\": \"{token}\", \"expires_on\": {expires}, \"tokenType\": \"Bearer\"}}'\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(["--auth-type", "cli"])
            .args(args)
            .env("MSTICPYCONFIG", &cfg)
            .env("PATH", &path)
            .output()
            .unwrap()
    };
    let out = run(&["connect"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.contains("Azure CLI account") && s.contains(secgraph_emulator::DEMO_TENANT_ID),
        "{s}"
    );
    let out = run(&["query", "Alerts.list", "--start", "-31d", "-o", "jsonl", "-vvv"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 7);
    assert!(
        !text(&out.stdout).contains(&token) && !text(&out.stderr).contains(&token),
        "the token is never printed"
    );
    let asked = std::fs::read_to_string(&log).unwrap();
    assert!(
        asked.contains("account get-access-token") && asked.contains("--scope") && asked.contains("/.default"),
        "{asked}"
    );
    assert!(
        asked.contains(&format!("--tenant {}", secgraph_emulator::DEMO_TENANT_ID)),
        "the configured tenant is asked for: {asked}"
    );
    drop(emu);
}

/// A misspelled parameter is an error naming the intended one (never an unfiltered result); a parameter unlike any
/// declared one keeps msticpy's convention (a warning, ignored).
#[test]
fn a_misspelled_parameter_is_an_error_naming_the_intended_one() {
    let dir = tempfile::tempdir().unwrap();
    let (_emu, cfg) = emulator(dir.path(), &["--alerts", "20"]);
    let out = secgraph(&cfg, &["query", "Alerts.list", "-p", "sevrity=high", "-o", "jsonl"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Did you mean 'severity'"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "rows were printed");
    let out = secgraph(&cfg, &["query", "Alerts.list", "-p", "bogus=x", "-o", "jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // A parameter written as an option gets the way to write it.
    let out = secgraph(&cfg, &["query", "Alerts.list", "--severity", "high"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("-p severity=high"), "{}", text(&out.stderr));
}

/// A reader that stops early (`| head -1`) ends every command quietly with exit 0: no panic, no error.
#[test]
fn a_closed_stdout_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let (_emu, cfg) = emulator(dir.path(), &["--alerts", "300"]);
    for args in [
        &["connect"][..],
        &["queries"][..],
        &["queries", "show", "Alerts.list"][..],
        &["query", "Alerts.list", "--start", "-30d", "-o", "jsonl"][..],
        &["query", "Alerts.list", "--start", "-30d"][..],
    ] {
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Read one byte, then close the pipe, as `head -c1` would.
        let mut stdout = child.stdout.take().unwrap();
        let mut one = [0u8; 1];
        let _ = std::io::Read::read(&mut stdout, &mut one);
        drop(stdout);
        let out = child.wait_with_output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("error"), "{args:?}: {stderr}");
    }
}

/// A request held back by the client's request budget is never silent: the wait is logged at -v and the summary
/// says how long the run waited.
#[test]
fn a_budget_wait_is_visible() {
    let dir = tempfile::tempdir().unwrap();
    let (_emu, cfg) = emulator(dir.path(), &["--alerts", "210"]);
    // 40 a minute: a burst of 40 requests, then one every 1.5 s; 43 pages of 5 need three waits.
    let out = secgraph(
        &cfg,
        &[
            "-v",
            "--requests-per-minute",
            "40",
            "exec",
            "/security/alerts_v2?$top=5",
            "--all",
            "-o",
            "jsonl",
        ],
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("for the request budget (40/min for alerts and incidents)"), "{err}");
    assert!(err.contains("s for the request budget") && err.contains("waited"), "{err}");
}

/// One multi-tenant app over a tenants file: every tenant's rows tagged with its own id, the tenants that cannot be
/// read named with the service's reason (exit 8, the others' rows written), a status file, tag and id filters, and
/// `--strict-tenants` failing the whole run.
#[test]
fn a_tenants_file_fans_out_names_failures_and_strict_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (_emu, cfg) = common::emulator(dir.path(), &["--tenants", "12", "--alerts-per-tenant", "15"]);
    let secgraph = |args: &[&str]| Command::new(BIN).arg("--config").arg(&cfg).args(args).output().unwrap();
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .arg("--config")
            .arg(&cfg)
            .args(["--instance", "MSSP"])
            .args(extra)
            .args(["query", "Alerts.list", "--start", "-30d", "-o", "jsonl"])
            .output()
            .unwrap()
    };
    let status_file = dir.path().join("status.csv");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .args([
            "--instance",
            "MSSP",
            "query",
            "Alerts.list",
            "--start",
            "-30d",
            "-o",
            "jsonl",
            "--summary",
        ])
        .arg(&status_file)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(stderr.contains("Customer 0005: FAILED") && stderr.contains("403"), "{stderr}");
    assert!(
        stderr.contains("Customer 0010: FAILED") && stderr.contains("AADSTS7000229"),
        "{stderr}"
    );
    let rows: Vec<serde_json::Value> = text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 10 * 15);
    assert!(rows.iter().all(|r| r["TenantId"] == r["tenantId"]));
    let status = std::fs::read_to_string(&status_file).unwrap();
    let lines: Vec<&str> = status.lines().collect();
    assert_eq!(lines[0], "tenant,name,instance,rows,pages,retries,budget_wait_s,error");
    assert_eq!(lines.len(), 13);
    assert!(lines[1].contains(",Customer 0001,MSSP,15,"), "{status}");
    assert!(
        lines[10].contains("Customer 0010") && lines[10].contains("AADSTS7000229"),
        "{status}"
    );

    // `connect` checks every tenant: signed in, roles granted, Graph reachable.
    let out = secgraph(&["--instance", "MSSP", "connect"]);
    assert_eq!(out.status.code(), Some(8), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let line = |name: &str| table.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_string();
    assert!(line("Customer 0001").contains("alerts,incidents,hunting"), "{table}");
    assert!(
        line("Customer 0005").contains(" none ") && line("Customer 0005").contains("403"),
        "{table}"
    );
    assert!(
        line("Customer 0010").contains("FAILED") && line("Customer 0010").contains("AADSTS7000229"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 13);

    let out = run(&["--tenant-tag", "test"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 3 * 15, "Customers 0004, 0008 and 0012");
    let out = secgraph(&[
        "--instance",
        "MSSP",
        "--tenant-tag",
        "test",
        "exec",
        "/security/incidents?$top=2",
        "-o",
        "jsonl",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 3 * 2, "exec reads each tenant too");
    assert!(rows.iter().all(|r| r["TenantId"] == r["tenantId"]));

    let out = run(&["--strict-tenants"]);
    let stderr = text(&out.stderr);
    assert!(!matches!(out.status.code(), Some(0) | Some(8)), "{:?} {stderr}", out.status.code());
    assert!(stderr.contains("--strict-tenants: 2 of 12 tenant(s) failed"), "{stderr}");
    // --split-by: every tenant reads the range as slices; the same rows as one pass.
    let sliced = |extra: &[&str]| {
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&cfg)
            .args([
                "--instance",
                "MSSP",
                "--tenant-tag",
                "test",
                "query",
                "Alerts.list",
                "--start",
                "-30d",
            ])
            .args(extra)
            .args(["-o", "jsonl"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let mut ids: Vec<(String, String)> = text(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|v| (v["TenantId"].as_str().unwrap().to_string(), v["id"].as_str().unwrap().to_string()))
            .collect();
        ids.sort();
        ids
    };
    let whole = sliced(&[]);
    let first = whole[0].0.clone();
    assert_eq!(whole.len(), 3 * 15);
    assert_eq!(sliced(&["--split-by", "4d", "--parallel", "2"]), whole);
    let out = secgraph(&[
        "-v",
        "--instance",
        "MSSP",
        "--tenant",
        &first,
        "query",
        "Alerts.list",
        "--start",
        "-30d",
        "--split-by",
        "4d",
        "-o",
        "jsonl",
    ]);
    assert!(
        text(&out.stderr).contains("running the query as time slices"),
        "{}",
        text(&out.stderr)
    );

    let out = secgraph(&["--tenant-tag", "prod", "query", "Alerts.list"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a filter without a tenants file is a settings error: {}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("needs a tenants file"));
}
