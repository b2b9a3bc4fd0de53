//! The module layering of `cairn-core` has no cycles: the graph of
//! top-level modules (`backend`, `formats`, `quant`, `models`, `lora`, …),
//! with an edge wherever one module's non-test code names another through
//! `crate::` or `super::`, must be acyclic, so lower layers never reach up
//! (`quant` never imports `formats` or `backend`; `backend` never imports
//! `generate`; `models` never imports `train`; `lora` never imports
//! `models`). A new cycle fails this test with the edges that form it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file (`backend/gpu/mod.rs` → `["backend", "gpu"]`).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The code of a file without comments and without its `#[cfg(test)]` part
/// (test modules sit at the end of a file here).
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Paths named in `code` after `prefix` (`crate::`, `super::`), as words.
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let words: Vec<&str> = rest[..end].split("::").filter(|w| !w.is_empty()).collect();
        out.push(words);
    }
    out
}

#[test]
fn core_modules_form_no_cycle() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(&src, f)).collect();
    let top = |m: &[String]| m.first().cloned().unwrap_or_else(|| "lib".into());
    let mut edges: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for f in &files {
        let m = module_of(&src, f);
        let is_mod_file = f.file_name().is_some_and(|n| n == "mod.rs");
        let text = code(&std::fs::read_to_string(f).unwrap());
        let mut targets: Vec<Vec<String>> = paths_after(&text, "crate::")
            .into_iter()
            .map(|w| w.iter().map(|s| s.to_string()).collect())
            .collect();
        for words in paths_after(&text, "super::") {
            // `super::` from `a/b.rs` is `a`; from `a/b/mod.rs` it is `a` too.
            let mut base = m.clone();
            if !is_mod_file || base.len() > 1 {
                base.pop();
            }
            let mut words = words.as_slice();
            while words.first() == Some(&"super") {
                base.pop();
                words = &words[1..];
            }
            base.extend(words.iter().map(|s| s.to_string()));
            targets.push(base);
        }
        for t in targets {
            // The longest prefix that is a module.
            let Some(k) = (1..=t.len()).rev().find(|&k| modules.contains(&t[..k])) else {
                continue;
            };
            let (from, to) = (top(&m), top(&t[..k]));
            if from != to && !m.is_empty() {
                edges
                    .entry(from)
                    .or_default()
                    .insert((to, f.strip_prefix(&src).unwrap().display().to_string()));
            }
        }
    }
    // Depth-first search for a cycle in the top-level graph.
    fn visit(
        v: &str,
        edges: &BTreeMap<String, BTreeSet<(String, String)>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<(String, String)>,
    ) -> Option<Vec<(String, String)>> {
        state.insert(v.to_string(), 1);
        for (w, file) in edges.get(v).into_iter().flatten() {
            stack.push((format!("{v} → {w}"), file.clone()));
            match state.get(w.as_str()) {
                Some(1) => {
                    let start = stack
                        .iter()
                        .position(|(e, _)| e.starts_with(&format!("{w} →")))
                        .unwrap_or(0);
                    return Some(stack[start..].to_vec());
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(w, edges, state, stack) {
                        return Some(c);
                    }
                }
            }
            stack.pop();
        }
        state.insert(v.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for v in edges.keys() {
        if !state.contains_key(v)
            && let Some(cycle) = visit(v, &edges, &mut state, &mut Vec::new())
        {
            let lines: Vec<String> = cycle
                .iter()
                .map(|(e, f)| format!("  {e}  (in {f})"))
                .collect();
            panic!("import cycle among core's modules:\n{}", lines.join("\n"));
        }
    }
}
