//! The workspace's shape rules (ARCHITECTURE.md, "Invariants"): no module of a crate imports, through `crate::`, a
//! module that imports it back (directly or round a longer loop), and no function is longer than 150 lines except
//! generated data tables. Read from the sources, so a change that breaks a rule fails here by name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_FUNCTION_LINES: usize = 150;
const CRATES: &[&str] = &["secgraph", "secgraph-emulator", "secgraph-cli", "secgraph-py"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// A line with string and character literals emptied and any `//` comment removed (enough for counting braces
/// and finding `crate::` paths in this codebase's style).
fn code(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        if in_str {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    in_str = false;
                    out.push('"');
                }
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push('"');
            }
            '\'' => {
                // A char literal ('{', '\'', '\n'); a lifetime ('a) is left as it is.
                let rest: String = chars.clone().take(3).collect();
                let len = if let Some(escaped) = rest.strip_prefix('\\') {
                    escaped.find('\'').map(|i| i + 2)
                } else if rest.chars().nth(1) == Some('\'') {
                    Some(2)
                } else {
                    None
                };
                match len {
                    Some(n) => {
                        for _ in 0..n {
                            chars.next();
                        }
                        out.push_str("' '");
                    }
                    None => out.push(c),
                }
            }
            '/' if chars.peek() == Some(&'/') => break,
            _ => out.push(c),
        }
    }
    out
}

/// The name of the function a line declares, if it does.
fn declared_fn(line: &str) -> Option<String> {
    let t = line.trim_start();
    let t = t.strip_prefix("pub(crate) ").or_else(|| t.strip_prefix("pub(super) ")).unwrap_or(t);
    let t = t.strip_prefix("pub ").unwrap_or(t);
    let t = t.strip_prefix("async ").unwrap_or(t);
    let t = t.strip_prefix("const ").unwrap_or(t);
    let t = t.strip_prefix("unsafe ").unwrap_or(t);
    let rest = t.strip_prefix("fn ")?;
    let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!name.is_empty()).then_some(name)
}

/// Every function longer than the limit in `files`: (file, name, lines).
fn long_functions(files: &[PathBuf]) -> Vec<(String, String, usize)> {
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(code).collect();
        for (i, l) in lines.iter().enumerate() {
            let Some(name) = declared_fn(l) else { continue };
            let (mut depth, mut opened) = (0i64, false);
            for (j, m) in lines.iter().enumerate().skip(i) {
                if !opened && m.contains(';') && !m.contains('{') {
                    break; // a declaration without a body
                }
                depth += m.matches('{').count() as i64 - m.matches('}').count() as i64;
                opened |= m.contains('{');
                if opened && depth <= 0 {
                    let n = j - i + 1;
                    if n > MAX_FUNCTION_LINES {
                        found.push((f.display().to_string(), name.clone(), n));
                    }
                    break;
                }
            }
        }
    }
    found
}

/// The crate's top-level modules and, for each, the other top-level modules it names through `crate::`.
fn module_graph(src: &Path, files: &[PathBuf]) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap_or(f);
        let first = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().to_string())
            .unwrap_or_default();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue; // the crate root declares and re-exports every module
        }
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for line in text.lines().map(code) {
            for (at, _) in line.match_indices("crate::") {
                let name: String = line[at + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                let is_module = src.join(format!("{name}.rs")).exists() || src.join(&name).is_dir();
                if is_module && name != module {
                    graph.entry(module.clone()).or_default().insert(name);
                }
            }
        }
    }
    graph
}

/// One cycle in `graph`, if there is one, as the modules round it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == n) {
            let mut c = path[at..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_function_is_longer_than_150_lines() {
    let mut files = Vec::new();
    for c in CRATES {
        rust_files(&workspace().join("crates").join(c).join("src"), &mut files);
    }
    assert!(files.len() > 50, "the sources were not found under {}", workspace().display());
    let long = long_functions(&files);
    assert!(long.is_empty(), "functions longer than {MAX_FUNCTION_LINES} lines: {long:#?}");
}

#[test]
fn no_module_cycles() {
    for c in CRATES {
        let src = workspace().join("crates").join(c).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let graph = module_graph(&src, &files);
        assert!(cycle(&graph).is_none(), "{c}: modules import each other round {:?}", cycle(&graph));
    }
}

#[test]
fn the_checks_find_what_they_look_for() {
    // A cycle a → b → a, and a function one line over the limit, are found.
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["a".to_string()])),
    ]
    .into();
    assert_eq!(cycle(&graph), Some(vec!["a".into(), "b".into(), "a".into()]));
    let dir = std::env::temp_dir().join(format!("secgraph-shape-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("long.rs");
    let body: String = (0..MAX_FUNCTION_LINES - 1).map(|i| format!("    let _x{i} = \"}}\";\n")).collect();
    std::fs::write(&file, format!("fn long() {{\n{body}}}\nfn short() {{ let c = '{{'; }}\n")).unwrap();
    let found = long_functions(std::slice::from_ref(&file));
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].1.as_str(), found[0].2), ("long", MAX_FUNCTION_LINES + 1));
}
