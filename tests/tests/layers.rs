//! The crates' module graphs: arrows only downward. In `lflow-host` a module
//! uses its own layer and the layers below it (foundation, data, train, eval,
//! deploy, then the CLI on top), and no two modules use each other, directly
//! or around a loop; in `lflow-core` no module loop either.
//!
//! The graph is read from the sources: every `crate::a::b` (and the CLI's
//! `lflow_host::a::b`) and `super::b` path outside comments and test modules,
//! and child-module path (`encoder::forward` inside `model`) outside comments
//! and test modules, resolved to the module it names (`train::backend`,
//! `data::nlb::score`, `config`). A folder's `mod` and `pub use` lines
//! declare, they do not use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The host's layers, bottom first; the foundation's modules are rank 0.
fn host_rank(module: &str) -> Option<usize> {
    let top = module.split("::").next()?;
    match top {
        "config" | "metrics" | "io" => Some(0),
        "data" => Some(1),
        "train" => Some(2),
        "eval" => Some(3),
        "deploy" => Some(4),
        "cli" | "main" => Some(5),
        _ => None,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a source file (`train/cuda/step.rs` -> `train::cuda::step`).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib") {
        parts.push(stem.to_string());
    }
    parts
}

/// The module a path names: its longest prefix that is a module of the crate
/// (`train::backend::Pass` -> `train::backend`); a name at the root that is
/// no module resolves through `aliases` (the root's re-exports), else to `lib`.
fn node(path: &[String], modules: &BTreeSet<String>, aliases: &[(&str, &str)]) -> String {
    if let Some((_, to)) = path.first().and_then(|first| aliases.iter().find(|(from, _)| from == first)) {
        return to.to_string();
    }
    (1..=path.len()).rev().map(|k| path[..k].join("::")).find(|m| modules.contains(m)).unwrap_or_else(|| "lib".into())
}

/// The code of a file without comments and without its `#[cfg(test)] mod tests { .. }`.
fn code(text: &str) -> String {
    let text: String = text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let Some(start) = text.find("#[cfg(test)]\nmod tests {") else { return text };
    let open = start + text[start..].find('{').unwrap_or(0);
    let mut depth = 0usize;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return format!("{}{}", &text[..start], &text[open + i + 1..]);
                }
            }
            _ => {}
        }
    }
    text[..start].to_string()
}

/// Identifier paths that start with `root::` in `text` (`crate::train::backend::Pass` -> `[train, backend, Pass]`).
fn paths_after(text: &str, root: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let needle = format!("{root}::");
    let mut from = 0;
    while let Some(i) = text[from..].find(&needle) {
        let at = from + i;
        from = at + needle.len();
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &text[from..];
        let path: Vec<String> = rest
            .split("::")
            .map(|seg| seg.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>())
            .take_while(|seg| !seg.is_empty())
            .collect();
        out.push(path);
    }
    out
}

/// Edges `from -> to` between the nodes of the crate under `src`.
fn graph(src: &Path, extern_name: Option<&str>, aliases: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(src, f).join("::")).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let module = module_of(src, &file);
        let from = node(&module, &modules, &[]);
        let text = code(&std::fs::read_to_string(&file).unwrap());
        let mut targets: Vec<Vec<String>> = paths_after(&text, "crate");
        if let Some(name) = extern_name {
            targets.extend(paths_after(&text, name));
        }
        // `super::x` from module `a::b` names `a::x` (`super::super::x`: `x`).
        for p in paths_after(&text, "super") {
            let ups = 1 + p.iter().take_while(|s| *s == "super").count();
            let mut base = module.clone();
            base.truncate(base.len().saturating_sub(ups));
            base.extend(p.into_iter().skip(ups - 1));
            targets.push(base);
        }
        // A child module named by its bare name (`encoder::forward` in `model`);
        // `mod` lines and `pub use` re-exports declare, they do not use.
        let uses: String = text
            .lines()
            .filter(|l| {
                let l = l.trim_start();
                !(l.starts_with("pub use") || l.starts_with("mod ") || l.contains(" mod ") || l.starts_with("pub mod"))
            })
            .collect::<Vec<_>>()
            .join("\n");
        let prefix = if module.is_empty() { String::new() } else { format!("{}::", module.join("::")) };
        for child in modules.iter().filter_map(|m| m.strip_prefix(&prefix)).filter(|c| !c.contains("::")) {
            for p in paths_after(&uses, child) {
                let mut t = module.clone();
                t.push(child.to_string());
                t.extend(p);
                targets.push(t);
            }
        }
        for t in targets {
            let to = node(&t, &modules, aliases);
            if to != from {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    edges
}

/// Every loop of the graph, each as one path `a -> b -> ... -> a`.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut found = Vec::new();
    for start in edges.keys() {
        // Depth-first from `start`, reporting loops back to it through larger names only (each loop once).
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        while let Some((at, path)) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == start {
                    found.push(format!("{} -> {start}", path.join(" -> ")));
                } else if next > start && !path.contains(next) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next.clone(), p));
                }
            }
        }
    }
    found
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn host_modules_use_only_their_layer_and_the_layers_below() {
    let aliases = [("Mode", "config"), ("ModeName", "config"), ("ModelConfig", "config"), ("Params", "train::params")];
    let edges = graph(&repo().join("host/src"), Some("lflow_host"), &aliases);
    let mut upward = Vec::new();
    for (from, tos) in &edges {
        let Some(rank) = host_rank(from) else { continue };
        for to in tos {
            match host_rank(to) {
                Some(r) if r <= rank => {}
                Some(_) => upward.push(format!("{from} -> {to}")),
                None => upward.push(format!("{from} -> {to} (a module outside every layer)")),
            }
        }
    }
    assert!(upward.is_empty(), "arrows up the layers:\n{}", upward.join("\n"));
    let loops = cycles(&edges);
    assert!(loops.is_empty(), "module loops in lflow-host:\n{}", loops.join("\n"));
    // The graph was read at all: the trainer uses the backends, the CLI the trainer.
    assert!(edges.get("train::trainer").is_some_and(|t| t.contains("train::backend")));
    assert!(edges.get("cli::train").is_some_and(|t| t.contains("train::session")));
}

#[test]
fn core_modules_form_no_loop() {
    let edges = graph(&repo().join("core/src"), None, &[]);
    let loops = cycles(&edges);
    assert!(loops.is_empty(), "module loops in lflow-core:\n{}", loops.join("\n"));
    assert!(edges.get("decoder").is_some_and(|t| t.contains("attention")), "{edges:?}");
}

#[test]
fn the_graph_reader_finds_loops_and_resolves_super() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        edges.entry(a.into()).or_default().insert(b.into());
    }
    assert_eq!(cycles(&edges), ["a -> b -> c -> a"]);
    let p = paths_after("use super::backend::{Pass};\nlet x = crate::train::cpu::X;", "crate");
    assert_eq!(p, [["train", "cpu", "X"]]);
    assert_eq!(code("a // crate::x\nb\n#[cfg(test)]\nmod tests { { crate::y } }\nc"), "a \nb\n\nc");
}
