//! The server's modules depend on each other one way: no module reaches, directly or through
//! others, back into itself. Read from the source: every `crate::a::b` path and every
//! `super::` path outside test code counts as a dependency of the file's module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The module path of a file under `src/`: `services/campaigns/mod.rs` → `[services, campaigns]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src").with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module paths a source text names after `prefix` (`crate::` or `super::`).
fn paths_after(text: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let path: String =
            rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_' || *c == ':').collect();
        let parts: Vec<String> =
            path.split("::").filter(|p| !p.is_empty()).map(str::to_string).collect();
        if !parts.is_empty() {
            out.push(parts);
        }
    }
    out
}

/// Dependencies between modules `depth` deep (top-level modules at 1; `services::x` at 2),
/// counting only pairs under the same parent.
fn graph(src: &Path, depth: usize) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let module = module_of(src, &file);
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if module.len() < depth || matches!(module.as_slice(), [m] if m == "lib" || m == "main") {
            continue;
        }
        // Test code may reach anywhere (`tests.rs` files and `#[cfg(test)] mod tests` blocks).
        if name == "tests.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
        let parent = module[..module.len() - 1].to_vec();
        let mut deps = paths_after(code, "crate::");
        for p in paths_after(code, "super::") {
            let mut full = parent.clone();
            full.extend(p);
            deps.push(full);
        }
        let from = &module[..depth];
        for d in deps {
            if d.len() < depth || d[..depth - 1] != from[..depth - 1] || d[..depth] == *from {
                continue;
            }
            g.entry(from.join("::")).or_default().insert(d[..depth].join("::"));
        }
    }
    g
}

/// A dependency path from `to` back to `from`, if there is one.
fn path_back(g: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> Option<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![vec![to.to_string()]];
    while let Some(path) = stack.pop() {
        let last = path.last().expect("non-empty").clone();
        if last == from {
            return Some(path);
        }
        if !seen.insert(last.clone()) {
            continue;
        }
        for next in g.get(&last).into_iter().flatten() {
            let mut p = path.clone();
            p.push(next.clone());
            stack.push(p);
        }
    }
    None
}

fn cycles(depth: usize) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph(&src, depth);
    let mut found = Vec::new();
    for (from, deps) in &g {
        for to in deps {
            if let Some(back) = path_back(&g, from, to) {
                found.push(format!("{from} -> {}", back.join(" -> ")));
            }
        }
    }
    found
}

#[test]
fn no_top_level_module_depends_on_itself_through_others() {
    let found = cycles(1);
    assert!(found.is_empty(), "import cycles between modules:\n{}", found.join("\n"));
}

#[test]
fn no_service_or_engine_part_depends_on_itself_through_others() {
    let found = cycles(2);
    assert!(found.is_empty(), "import cycles inside a module:\n{}", found.join("\n"));
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["c".to_string()])),
        ("c".to_string(), BTreeSet::from(["a".to_string()])),
    ]
    .into_iter()
    .collect();
    assert_eq!(path_back(&g, "a", "b"), Some(vec!["b".into(), "c".into(), "a".into()]));
    assert_eq!(
        paths_after("use crate::services::campaigns::X; super::observe::f()", "crate::"),
        vec![vec!["services".to_string(), "campaigns".to_string()]]
    );
}
