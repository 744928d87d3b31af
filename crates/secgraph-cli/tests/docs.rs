//! The documentation runs: every `secgraph` command in a shell block of README.md and docs/*.md (docs/CLI.md is
//! generated and tested apart) is run as written against the emulator, as a new user would, and must succeed.
//!
//! How a block is run:
//! - each line that starts with `secgraph` (or `VAR=value secgraph`) is run by `sh -c`, in a folder holding the
//!   emulator's `emulator.yaml`, with `MSTICPYCONFIG=emulator.yaml`, the binary first on `PATH` and stdin closed; its
//!   exit status must be 0; a trailing `# comment` is the doc's, not the shell's concern;
//! - `/lake/security` is a folder of the test's own; `secgraph emulator …` only has its arguments checked (the test
//!   runs its own emulator, with `--auto-approve` as the person who signs in);
//! - a command with `--follow` runs for a few seconds, then gets SIGTERM, and must end with 0, as a daemon does;
//! - a block after `<!-- docs-test: parse-only … -->` (a real tenant, a real storage account) only has its
//!   arguments checked (`SECGRAPH_DOCS_PARSE_ONLY=1`: the command line is parsed, nothing is run).

mod common;

use common::{BIN, emulator};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct DocCommand {
    file: String,
    line: usize,
    text: String,
    parse_only: bool,
}

/// The line without its trailing `# comment` (a `#` outside quotes, after a space).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let bytes = line.as_bytes();
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && i > 0 && bytes[i - 1] == b' ' => return line[..i].trim_end(),
            _ => {}
        }
    }
    line.trim_end()
}

fn is_secgraph_command(line: &str) -> bool {
    let mut words = line.split_whitespace();
    loop {
        match words.next() {
            Some("secgraph") => return true,
            // `VAR=value secgraph …`
            Some(w) if w.contains('=') && !w.starts_with('-') => continue,
            _ => return false,
        }
    }
}

fn doc_commands(root: &Path) -> Vec<DocCommand> {
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md") && !p.ends_with("CLI.md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let name = f.strip_prefix(root).unwrap().display().to_string();
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let fence = lines[i].trim_start();
            let shell = ["```sh", "```bash", "```shell"].contains(&fence);
            if !shell {
                i += 1;
                continue;
            }
            let parse_only = i > 0 && lines[i - 1].trim_start().starts_with("<!-- docs-test: parse-only");
            i += 1;
            let mut pending = String::new();
            let mut start = i;
            while i < lines.len() && !lines[i].trim_start().starts_with("```") {
                let l = strip_comment(lines[i]);
                if pending.is_empty() {
                    start = i;
                }
                if let Some(cont) = l.strip_suffix('\\') {
                    pending.push_str(cont);
                    pending.push(' ');
                } else {
                    pending.push_str(l);
                    let cmd = std::mem::take(&mut pending);
                    let cmd = cmd.trim();
                    if is_secgraph_command(cmd) {
                        out.push(DocCommand {
                            file: name.clone(),
                            line: start + 1,
                            text: cmd.to_string(),
                            parse_only,
                        });
                    }
                }
                i += 1;
            }
            i += 1;
        }
    }
    out
}

#[test]
fn every_documented_command_runs_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let commands = doc_commands(&root);
    assert!(commands.len() >= 20, "found only {} documented commands", commands.len());
    let dir = tempfile::tempdir().unwrap();
    let (_emu, cfg) = emulator(
        dir.path(),
        // Four customer tenants, all consented: the MSSP examples run as written.
        &[
            "--alerts",
            "200",
            "--tenants",
            "4",
            "--auto-approve",
            "analyst@contoso-demo.onmicrosoft.com",
        ],
    );
    assert_eq!(cfg, dir.path().join("emulator.yaml"));
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let lake = dir.path().join("lake");
    let mut failures = Vec::new();
    for c in &commands {
        let text = c.text.replace("/lake/security", &format!("{}/security", lake.display()));
        let parse_only = c.parse_only || text.split_whitespace().nth(1) == Some("emulator");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(&text)
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("MSTICPYCONFIG", "emulator.yaml")
            // A person at a terminal, as the docs assume: the emulator's --auto-approve completes their sign-ins.
            .env("SECGRAPH_PROMPT", "always")
            .env("HOME", dir.path())
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .env_remove("SECGRAPH_CLIENT_SECRET")
            .env_remove("SECGRAPH_CONNECTION_STRING")
            .stdin(Stdio::null())
            // Into files, not pipes: a command that writes more than a pipe holds (a wide table) would block until
            // killed while nobody reads it.
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.txt")).unwrap());
        if parse_only {
            cmd.env("SECGRAPH_DOCS_PARSE_ONLY", "1");
        }
        let child = cmd.spawn().unwrap();
        let follow = text.contains("--follow") && !parse_only;
        let out = if follow {
            // A daemon: let it run a round, then stop it as a service manager would.
            std::thread::sleep(Duration::from_secs(4));
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!("pkill -TERM -P {} || kill -TERM {}", child.id(), child.id()))
                .status();
            child.wait_with_output().unwrap()
        } else {
            let deadline = Instant::now() + Duration::from_secs(180);
            let mut child = child;
            loop {
                if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                    let _ = child.kill();
                    break child.wait_with_output().unwrap();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        if !out.status.success() {
            failures.push(format!(
                "{}:{}: `{}` exited with {:?}{}:\n{}",
                c.file,
                c.line,
                c.text,
                out.status.code(),
                if parse_only { " (arguments only)" } else { "" },
                std::fs::read_to_string(dir.path().join("stderr.txt"))
                    .unwrap_or_default()
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} documented commands failed:\n\n{}",
        failures.len(),
        commands.len(),
        failures.join("\n\n")
    );
}

#[test]
fn comments_are_the_docs_and_quotes_are_the_shells() {
    assert_eq!(strip_comment("secgraph connect   # tenant, app"), "secgraph connect");
    assert_eq!(
        strip_comment("secgraph query Hunting.run -p query='A | where x == \"#1\"' # note"),
        "secgraph query Hunting.run -p query='A | where x == \"#1\"'"
    );
    assert!(is_secgraph_command("MSTICPYCONFIG=emulator.yaml secgraph query Alerts.list"));
    assert!(!is_secgraph_command("export MSTICPYCONFIG=emulator.yaml"));
    assert!(!is_secgraph_command("cargo build -p secgraph-cli"));
}

/// Every path ARCHITECTURE.md names exists: repository paths (`crates/…`, `scripts/…`, `docs/…`) as written, and a
/// crate section's folders and files (`auth/`, `connect.rs`, `tests/churn.rs`) under that crate (or its `src/`).
#[test]
fn every_path_the_architecture_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut krate: Option<PathBuf> = None;
    // A code-map bullet opens with its folder (`config/`); the files it then names are in that folder.
    let mut folder: Option<String> = None;
    let mut missing = Vec::new();
    let mut checked = 0;
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("### `crates/") {
            krate = h.split('`').next().map(|c| root.join("crates").join(c));
        } else if line.starts_with("## ") || line.starts_with("### ") {
            krate = None;
        }
        if let Some(rest) = line.strip_prefix("- `") {
            folder = rest.split('`').next().filter(|f| f.ends_with('/')).map(str::to_string);
        } else if !line.starts_with("  ") {
            folder = None;
        }
        for (i, tok) in line.split('`').enumerate() {
            let plain = tok.chars().all(|c| c.is_ascii_alphanumeric() || "._-/*".contains(c));
            if i % 2 == 0 || tok.is_empty() || !plain || tok.starts_with('/') || tok.starts_with("..") {
                continue;
            }
            // `mod.rs` outside a folder's bullet is the general convention, not a file.
            if tok == "mod.rs" && folder.is_none() {
                continue;
            }
            let repo_path = ["crates/", "scripts/", "docs/", "fuzz/", ".cargo/"]
                .iter()
                .any(|p| tok.starts_with(p));
            let local = tok.ends_with('/') || tok.ends_with(".rs") || tok.ends_with(".yaml");
            let candidates: Vec<PathBuf> = if repo_path {
                vec![root.join(tok)]
            } else if let (Some(k), true) = (&krate, local) {
                let mut c = vec![k.join(tok), k.join("src").join(tok), k.join("python/secgraph").join(tok)];
                if let Some(f) = &folder {
                    c.push(k.join("src").join(f).join(tok));
                }
                c
            } else {
                continue;
            };
            checked += 1;
            let exists = |p: &PathBuf| {
                let s = p.to_string_lossy().to_string();
                if s.contains('*') {
                    // A glob: its folder holds at least one file of that shape.
                    let (dir, pattern) = s.rsplit_once('/').unwrap();
                    let (pre, post) = pattern.split_once('*').unwrap();
                    std::fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
                        let n = e.file_name().to_string_lossy().to_string();
                        n.starts_with(pre) && n.ends_with(post)
                    })
                } else {
                    p.exists()
                }
            };
            if !candidates.iter().any(exists) {
                missing.push(tok.to_string());
            }
        }
    }
    assert!(checked > 30, "only {checked} paths checked: the parser no longer finds them");
    assert!(missing.is_empty(), "ARCHITECTURE.md names paths that do not exist: {missing:?}");
}
