//! Golden files: one fixed dataset (`secgraph emulator --as-of TIME --seed S`: the same data on every run), each text
//! output format compared byte for byte with `tests/golden/*`, and the typed formats read back against them.
//! After an intended change of output: `UPDATE_GOLDEN=1 cargo test -p secgraph-cli --test golden`, then review the
//! diff of `tests/golden/`.

mod common;
use common::{BIN, emulator};
use std::path::Path;
use std::process::Command;

const AS_OF: &str = "2026-06-01T00:00:00Z";

fn run(cfg: &Path, args: &[&str]) -> Vec<u8> {
    run_with(cfg, args, &[])
}

fn run_with(cfg: &Path, args: &[&str], env: &[(&str, &str)]) -> Vec<u8> {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("COLUMNS")
        .envs(env.iter().copied())
        .env("MSTICPYCONFIG", cfg)
        .env("NO_COLOR", "1")
        .env_remove("SECGRAPH_CLIENT_SECRET")
        .env_remove("SECGRAPH_CONNECTION_STRING")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Compares `got` with the golden file `name` (or rewrites it with UPDATE_GOLDEN=1).
fn golden(name: &str, got: &[u8]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert!(
        got == want.as_slice(),
        "{name} differs from its golden file:\n--- got\n{}\n--- want\n{}",
        String::from_utf8_lossy(got),
        String::from_utf8_lossy(&want)
    );
}

#[test]
fn every_output_format_matches_its_golden_file_on_a_fixed_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let (_emu, cfg) = emulator(dir.path(), &["--alerts", "40", "--seed", "7", "--as-of", AS_OF]);
    let alerts = [
        "query",
        "Alerts.list",
        "--start",
        "2026-05-27T00:00:00Z",
        "--end",
        AS_OF,
        "--limit",
        "5",
    ];
    let incidents = [
        "query",
        "Incidents.list",
        "--start",
        "2026-05-27T00:00:00Z",
        "--end",
        AS_OF,
        "--limit",
        "4",
    ];
    fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        base.iter().chain(extra).copied().collect()
    }

    let jsonl = run(&cfg, &with(&alerts, &["-o", "jsonl"]));
    golden("alerts.jsonl", &jsonl);
    golden("alerts.json", &run(&cfg, &with(&alerts, &["-o", "json"])));
    golden("alerts.csv", &run(&cfg, &with(&alerts, &["-o", "csv"])));
    golden("alerts.tsv", &run(&cfg, &with(&alerts, &["-o", "tsv"])));
    golden("alerts.yaml", &run(&cfg, &with(&alerts, &["-o", "yaml"])));
    golden("alerts.table.txt", &run(&cfg, &alerts));
    // Fitted to a terminal's width (COLUMNS stands for it): columns dropped from the right, titles cut with '…',
    // times whole.
    for width in ["80", "120", "200"] {
        golden(
            &format!("alerts.table.{width}.txt"),
            &run_with(&cfg, &alerts, &[("COLUMNS", width)]),
        );
    }
    golden(
        "alerts.wide.table.txt",
        &run_with(
            &cfg,
            &with(&alerts, &["--wide", "--columns", "id,title,evidence"]),
            &[("COLUMNS", "80")],
        ),
    );
    golden(
        "alerts.columns.table.txt",
        &run(&cfg, &with(&alerts, &["--columns", "createdDateTime,severity,status,title"])),
    );
    golden("incidents.table.txt", &run(&cfg, &incidents));
    // --query reshapes each row (JMESPath, as az has it) in every format; null leaves the row out.
    let shape = "severity != 'informational' && {id: id, sev: severity, host: evidence[?hostName].hostName | [0]} || null";
    golden("alerts.query.jsonl", &run(&cfg, &with(&alerts, &["-o", "jsonl", "--query", shape])));
    golden("alerts.query.table.txt", &run(&cfg, &with(&alerts, &["--query", shape])));
    golden("alerts.query.csv", &run(&cfg, &with(&alerts, &["-o", "csv", "--query", "title"])));
    let bad = Command::new(BIN)
        .args(with(&alerts, &["--query", "[[["]))
        .env("MSTICPYCONFIG", &cfg)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "a malformed expression is a usage error");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("--query: Parse error") && err.contains("of '[[['"), "{err}");
    golden("incidents.csv", &run(&cfg, &with(&incidents, &["-o", "csv"])));

    // The typed formats carry the same rows: Parquet read back has the JSON lines' ids, in order.
    let rows: Vec<serde_json::Value> = String::from_utf8(jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 5);
    let file = dir.path().join("alerts.parquet");
    run(&cfg, &with(&alerts, &["-o", "parquet", "--out", file.to_str().unwrap()]));
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut ids = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let col = batch.column_by_name("id").expect("an id column");
        let col = col.as_any().downcast_ref::<arrow_array::StringArray>().expect("ids as strings");
        ids.extend(col.iter().map(|v| v.unwrap().to_string()));
    }
    let want: Vec<String> = rows.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, want);
}

/// Runs the CLI under a pseudo-terminal (util-linux `script`, in Debian's essential set), as a person at a
/// terminal would, and returns what the terminal showed.
fn on_a_terminal(cfg: &Path, args: &str, env: &[(&str, &str)]) -> String {
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &format!("{BIN} {args}"), "/dev/null"])
        .env("MSTICPYCONFIG", cfg)
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS")
        .envs(env.iter().copied())
        .output()
        .expect("util-linux `script` runs a command under a pseudo-terminal");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn severity_is_coloured_only_on_a_terminal_and_never_with_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let (_emu, cfg) = emulator(dir.path(), &["--alerts", "40", "--seed", "7", "--as-of", AS_OF]);
    let args = format!("query Alerts.list --start 2026-05-27T00:00:00Z --end {AS_OF} --limit 5 -q");
    let red = "\u{1b}[38;5;9m"; // comfy-table's Color::Red
    let tty = on_a_terminal(&cfg, &args, &[("COLUMNS", "120")]);
    assert!(tty.contains("┆ severity"), "{tty}");
    assert!(tty.contains(&format!("{red} high")), "high in red on a terminal:\n{tty:?}");
    let no_color = on_a_terminal(&cfg, &args, &[("COLUMNS", "120"), ("NO_COLOR", "1")]);
    assert!(
        no_color.contains("┆ severity") && !no_color.contains('\u{1b}'),
        "NO_COLOR:\n{no_color:?}"
    );
    let piped = run(&cfg, &args.split(' ').collect::<Vec<_>>());
    assert!(!String::from_utf8_lossy(&piped).contains('\u{1b}'), "no escape codes into a pipe");
    // JSON is indented for a person, and passed through as sent into a pipe.
    let json = on_a_terminal(&cfg, &format!("{args} -o json"), &[]);
    assert!(json.contains("\n  {") && json.contains("\n    \"id\": "), "{json}");
    let piped = String::from_utf8(run(&cfg, &args.split(' ').chain(["-o", "json"]).collect::<Vec<_>>())).unwrap();
    assert!(piped.starts_with("[\n{\"@odata.type\""), "{piped}");
}

#[test]
fn help_lists_headings_allowed_values_and_examples() {
    let help = |args: &[&str]| -> Vec<u8> {
        let out = Command::new(BIN)
            .args(args)
            .env("COLUMNS", "100")
            .env_remove("MSTICPYCONFIG")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        out.stdout
    };
    golden("help.query.txt", &help(&["query", "--help"]));
    golden("help.alert-update.txt", &help(&["alert", "update", "--help"]));
    golden("help.incident-update.txt", &help(&["incident", "update", "--help"]));
    let text = String::from_utf8(help(&["query", "--help"])).unwrap();
    for heading in ["Time range:", "Tenants:", "Output:", "Sign-in:", "Examples:"] {
        assert!(text.contains(heading), "query --help has a '{heading}' section");
    }
    // Enum-valued options are checked before anything is sent, in any case, with the allowed values listed.
    let out = Command::new(BIN)
        .args(["incident", "update", "1", "--status", "closed"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("active, inProgress, resolved"));
    let out = Command::new(BIN)
        .args(["alert", "update", "1", "--status", "RESOLVED", "--dry-run"])
        .env_remove("MSTICPYCONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("resolved"));
}

#[test]
fn docs_cli_md_is_generated_from_the_command_definitions() {
    let out = Command::new(BIN).arg("help-markdown").env_remove("MSTICPYCONFIG").output().unwrap();
    assert!(out.status.success());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/CLI.md");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &out.stdout).unwrap();
    }
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        std::fs::read_to_string(&path).unwrap_or_default() == text,
        "docs/CLI.md is stale: run `UPDATE_DOCS=1 cargo test -p secgraph-cli --test golden`"
    );
    for command in [
        "## `secgraph query`",
        "## `secgraph alert update`",
        "## `secgraph export`",
        "## `secgraph emulator`",
    ] {
        assert!(text.contains(command), "{command}");
    }
    assert!(text.matches("Examples:").count() >= 10, "each main command has examples");
}

#[test]
fn times_are_checked_before_anything_is_sent() {
    let print = |args: &[&str]| {
        Command::new(BIN)
            .args(["--emulator", "query", "Alerts.list", "--print"])
            .args(args)
            .env_remove("MSTICPYCONFIG")
            .output()
            .unwrap()
    };
    let out = print(&["--start", "7d", "--end", "14d"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is in the future") && err.contains("-7d"),
        "a start without its minus is pointed out: {err}"
    );
    let out = print(&["--start", "2026-13-01"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("month 13 is out of range"));
    let out = print(&["--start", "-1d", "--end", "-2d"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is later than end"));
}
