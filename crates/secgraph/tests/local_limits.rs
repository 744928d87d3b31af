//! Local input the user controls, read defensively: settings files, CA bundles, query files and caches are
//! bounded and must be regular files; YAML errors never quote a value; out-of-range settings and times are errors
//! that name what was wrong; the token cache's folder rules.

use secgraph::HttpOptions;
use secgraph::auth::TokenCache;
use secgraph::config::{ConfigSource, Settings};
use secgraph::query::QueryStore;
use secgraph::{Error, ErrorKind};

#[test]
fn yaml_errors_show_where_and_which_key_but_never_a_value() {
    let text = "DataProviders:\n  MicrosoftGraph:\n    Args:\n      ClientId: abc\n      ClientSecret: SuperSecretValue123\n      ClientId: def\n      TenantId: t\n";
    let e = Settings::from_yaml(text, "dup.yaml").unwrap_err().to_string();
    assert!(e.contains("line 6") && e.contains("ClientId"), "{e}");
    assert!(!e.contains("SuperSecretValue123") && !e.contains("abc") && !e.contains('\n'), "{e}");
    // A scalar error quoting its text is masked too.
    let e = Settings::from_yaml("a: \"SuperSecretValue123\n  b: [", "bad.yaml")
        .unwrap_err()
        .to_string();
    assert!(!e.contains("SuperSecretValue123"), "{e}");
}

#[test]
fn two_names_for_one_setting_are_an_error() {
    let s = Settings::from_yaml(
        "DataProviders:\n  MicrosoftGraph:\n    Args:\n      TenantId: a\n      tenant_id: b\n      ClientId: c\n",
        "t.yaml",
    )
    .unwrap();
    let e = s.provider_args(None).unwrap_err().to_string();
    assert!(e.contains("tenant_id") && e.contains("TenantId"), "{e}");
}

#[test]
fn many_merge_keys_are_accepted_and_an_alias_bomb_is_not() {
    let mut text = String::from("base: &b {x: 1}\nlist:\n");
    for i in 0..2000 {
        text.push_str(&format!("  - <<: *b\n    y: {i}\n"));
    }
    Settings::from_yaml(&text, "merge.yaml").unwrap();
    let mut bomb = String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        bomb.push_str(&format!("l{i}: &l{i} [{}]\n", vec![format!("*l{}", i - 1); 9].join(", ")));
    }
    assert!(Settings::from_yaml(&bomb, "bomb.yaml").is_err());
}

#[test]
fn out_of_range_timeouts_are_settings_errors_not_panics() {
    for t in ["1e20", "{connect: 1e25}", "[1, 1e300]", ".inf", "-1", "3601"] {
        // Either the YAML reader refuses the number (`.inf`) or the setting is out of range: never a panic.
        let e = match Settings::from_yaml(&format!("msticpy:\n  http_timeout: {t}\n"), "t.yaml") {
            Ok(s) => s.http_timeout().unwrap_err(),
            Err(e) => e,
        };
        assert_eq!(e.kind(), ErrorKind::Settings, "{t}: {e}");
        assert!(e.to_string().contains("http_timeout") || e.to_string().contains("line 2"), "{e}");
    }
    let s = Settings::from_yaml("msticpy:\n  http_timeout: {connect: 5, read: 30}\n", "t.yaml").unwrap();
    assert_eq!(s.http_timeout().unwrap(), Some(30.0));
}

#[cfg(unix)]
#[test]
fn devices_and_oversized_files_are_refused_wherever_a_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let zero = dir.path().join("zero.yaml");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    for p in [std::path::Path::new("/dev/zero"), zero.as_path()] {
        let e = Settings::load(p, ConfigSource::Explicit).unwrap_err();
        assert!(matches!(e, Error::ConfigRead { .. }), "{e}");
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
    let e = HttpOptions {
        ca_certificates: vec![zero.clone()],
        ..Default::default()
    }
    .build()
    .unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    let big = dir.path().join("big.pem");
    std::fs::write(&big, vec![b'a'; 5 * 1024 * 1024]).unwrap();
    let e = HttpOptions {
        ca_certificates: vec![big],
        ..Default::default()
    }
    .build()
    .unwrap_err();
    assert!(e.to_string().contains("bytes"), "{e}");
    let mut store = QueryStore::builtin().unwrap();
    let e = store.add_dir(dir.path()).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
}

#[test]
fn a_query_file_whose_query_is_not_text_is_refused() {
    let mut store = QueryStore::builtin().unwrap();
    let file = "metadata:\n  data_environments: [SecurityGraph]\n  data_families: [Custom]\nsources:\n  q:\n    description: d\n    args:\n      query: 5\n";
    let e = store.add_file(file, "q.yaml").unwrap_err().to_string();
    assert!(e.contains("q.yaml") && e.contains("must be text"), "{e}");
}

#[test]
fn empty_and_out_of_range_times_name_the_parameter() {
    let store = QueryStore::builtin().unwrap();
    let q = store.get("Alerts.list").unwrap();
    let now = chrono::Utc::now();
    for (v, want) in [
        ("", "empty"),
        ("+8000y", "out of range"),
        ("-2100y", "out of range"),
        ("12000-01-01", ""),
    ] {
        let e = q.render(&[("start".into(), v.into())], now).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage, "{v}: {e}");
        assert!(e.to_string().contains("'start'") && e.to_string().contains(want), "{v}: {e}");
    }
}

#[cfg(unix)]
mod cache_folders {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_folder_others_can_write_is_refused_and_never_changed() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let e = TokenCache::at(shared.join("tc.json")).check().unwrap_err();
        assert!(e.to_string().contains("writable by every user"), "{e}");
        assert_eq!(mode(&shared), 0o1777, "the folder was left as it was");
    }

    #[test]
    fn only_folders_secgraph_creates_are_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let existing = dir.path().join("existing");
        std::fs::create_dir(&existing).unwrap();
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o755)).unwrap();
        let deeper = existing.join("new").join("deeper");
        TokenCache::at(deeper.join("tc.json")).check().unwrap();
        // A write through a cache creates the missing folders owner-only and leaves the existing one alone.
        let secrets = secgraph::keyvault::SecretCache::at(deeper.join("secrets.json"));
        secrets.retain(&[]).unwrap();
        assert!(secrets.path().exists());
        assert_eq!(mode(&existing), 0o755);
        assert_eq!(mode(&existing.join("new")), 0o700);
        assert_eq!(mode(&deeper), 0o700);
        assert_eq!(mode(secrets.path()), 0o600);
    }

    #[test]
    fn a_cache_file_others_can_read_is_made_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tc.json");
        std::fs::write(&path, "{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(TokenCache::at(&path).accounts().is_empty());
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn a_relative_path_is_absolute_before_any_sign_in() {
        let c = TokenCache::at("tc.json");
        assert!(c.path().is_absolute(), "{}", c.path().display());
        c.check().unwrap();
    }
}

#[test]
fn a_range_that_ends_before_it_starts_and_impossible_dates_are_explained() {
    let store = QueryStore::builtin().unwrap();
    let q = store.get("Alerts.list").unwrap();
    let now = chrono::Utc::now();
    let e = q
        .render(&[("start".into(), "-1d".into()), ("end".into(), "-7d".into())], now)
        .unwrap_err()
        .to_string();
    assert!(e.contains("later than end"), "{e}");
    for (v, want) in [
        ("2026-13-01", "month 13 is out of range"),
        ("2026-02-30", "day 30 is not a day of 2026-02"),
    ] {
        let e = q.render(&[("start".into(), v.into())], now).unwrap_err().to_string();
        assert!(e.contains(want), "{v}: {e}");
    }
}
