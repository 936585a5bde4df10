//! The crate's module graph: `cargo test --test admin layers`.
//!
//! depfw's top-level modules sit in layers ([`LAYERS`]), each importing only its own and
//! those below, with no cycle inside a layer, so a check never depends on the proxy and the
//! proxy can be rewritten without touching a check. The admin endpoint in particular is a
//! server layer, and `cli` (the command line's arguments and printing) sits beside it, so
//! nothing in `src/admin/` may name `crate::cli`; operations both need live below both
//! (`store`, `agents`).

use crate::support::imports::{crate_imports, modules_named};
use crate::support::repo;

#[test]
fn admin_never_imports_cli() {
    let imports = crate_imports(&repo().join("src/admin"));
    // The scan must see the tree's real imports, or an empty answer would pass.
    assert!(imports.iter().any(|i| i.module == "store"), "{imports:#?}");
    let upward: Vec<_> = imports.iter().filter(|i| i.module == "cli").collect();
    assert!(
        upward.is_empty(),
        "src/admin imports crate::cli, a layer above it: {upward:#?}"
    );
}

#[test]
fn every_way_of_naming_a_module_is_found() {
    let source = r##"
use crate::policy::Verdict;
use crate::{agents::Agent, cli::overrides::{self, X}};
use crate::{
    store::Store,
    cli,
};
// use crate::report::Sarif; a comment is not an import
/* nor is crate::server in a block comment */
const S: &str = "crate::audit::run";
const R: &str = r#"crate::feeds"#;
const C: char = '"';
fn f<'a>(x: &'a str) { crate::engine::run(x); depfw::config::load(); }
"##;
    let named = modules_named(source);
    let found: Vec<(usize, &str)> = named
        .iter()
        .map(|(line, module)| (*line, module.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (2, "policy"),
            (3, "agents"),
            (3, "cli"),
            (5, "store"),
            (6, "cli"),
            (13, "engine")
        ]
    );
}

/// The crate's layers, bottom first: a module may import its own layer's and those below,
/// never one above, and the imports within a layer have no cycle. Every top-level module
/// of `src/` must be listed (`ARCHITECTURE.md` says why each sits where it does).
const LAYERS: &[&[&str]] = &[
    // Shared vocabulary: package identity, findings and their codes, dates.
    &["package", "diag", "when"],
    // Data only: OSV advisories, the index, the bundled snapshot, popular-name lists.
    &["feeds"],
    // Pure decisions: each check with its own config and codes; agent presets, breaker.
    &["policy", "agents"],
    // What is kept (the sled store) and the config aggregator over every section.
    &["store", "config"],
    // Putting it together: the policy engine, the audit run, registry protocols.
    &["engine", "audit", "registry", "observe"],
    // The doors: proxy, admin endpoint, reports, the command line.
    &["server", "admin", "report", "cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// One import of a top-level module by another: (from, to, `file:line`).
type Edge = (String, String, String);

/// Every import between top-level modules of `src/`, found with [`crate_imports`].
fn module_edges() -> Vec<Edge> {
    let src = repo().join("src");
    let imports = crate_imports(&src);
    let modules: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?.to_owned();
            (p.is_dir() || p.extension().is_some_and(|e| e == "rs")).then_some(stem)
        })
        .filter(|m| m != "lib" && m != "main")
        .collect();
    for module in &modules {
        assert!(
            layer_of(module).is_some(),
            "src/{module} is in no layer: add it to LAYERS in tests/admin/layers.rs"
        );
    }
    imports
        .into_iter()
        .filter_map(|i| {
            let from = i.file.components().next()?.as_os_str().to_str()?;
            let from = from.strip_suffix(".rs").unwrap_or(from).to_owned();
            // `lib.rs` declares the modules; `main.rs` is the binary, above every layer.
            let inside = modules.contains(&from) && modules.contains(&i.module);
            (inside && from != i.module).then(|| {
                let at = format!("src/{}:{}", i.file.display(), i.line);
                (from, i.module, at)
            })
        })
        .collect()
}

/// What is wrong with a module graph: imports of a higher layer and cycles
/// within a layer, one message each naming the file and line of every offending import.
fn layer_violations(edges: &[Edge]) -> Vec<String> {
    let mut problems = Vec::new();
    for (from, to, at) in edges {
        let (Some(lower), Some(upper)) = (layer_of(from), layer_of(to)) else {
            continue;
        };
        if lower >= upper {
            continue;
        }
        problems.push(format!(
            "{at}: `{from}` (layer {lower}) imports `{to}` (layer {upper}), a layer above it"
        ));
    }
    // Within a layer: a module that reaches itself again through same-layer imports.
    for layer in LAYERS {
        let inner: Vec<&Edge> = edges
            .iter()
            .filter(|(f, t, _)| {
                f != t && layer.contains(&f.as_str()) && layer.contains(&t.as_str())
            })
            .collect();
        for (from, to, at) in &inner {
            if reaches(&inner, to, from) {
                problems.push(format!(
                    "{at}: `{from}` imports `{to}`, which imports `{from}` back (a cycle within one layer)"
                ));
            }
        }
    }
    problems
}

fn reaches(edges: &[&Edge], from: &str, target: &str) -> bool {
    let mut stack = vec![from.to_owned()];
    let mut seen = std::collections::HashSet::new();
    while let Some(module) = stack.pop() {
        if module == target {
            return true;
        }
        if seen.insert(module.clone()) {
            stack.extend(edges.iter().filter(|e| e.0 == module).map(|e| e.1.clone()));
        }
    }
    false
}

#[test]
fn no_module_imports_a_layer_above_it_and_layers_have_no_cycle() {
    let edges = module_edges();
    // The scan must see the tree's real imports, or an empty answer would pass.
    assert!(
        edges
            .iter()
            .any(|(f, t, _)| f == "server" && t == "registry"),
        "{edges:#?}"
    );
    let problems = layer_violations(&edges);
    assert!(
        problems.is_empty(),
        "the module graph breaks its layers (see LAYERS in tests/admin/layers.rs):\n{}",
        problems.join("\n")
    );
}

#[test]
fn an_upward_import_and_a_same_layer_cycle_are_named_with_their_place() {
    let edge = |f: &str, t: &str, at: &str| (f.to_owned(), t.to_owned(), at.to_owned());
    let edges = [
        edge("feeds", "policy", "src/feeds/osv.rs:24"),
        edge("server", "admin", "src/server/admin.rs:3"),
        edge("admin", "server", "src/admin/mod.rs:9"),
        edge("cli", "engine", "src/cli/check.rs:5"),
    ];
    assert_eq!(
        layer_violations(&edges),
        [
            "src/feeds/osv.rs:24: `feeds` (layer 1) imports `policy` (layer 2), a layer above it",
            "src/server/admin.rs:3: `server` imports `admin`, which imports `server` back (a cycle within one layer)",
            "src/admin/mod.rs:9: `admin` imports `server`, which imports `admin` back (a cycle within one layer)",
        ]
    );
    assert!(layer_violations(&edges[3..]).is_empty());
}

#[test]
fn super_chains_that_leave_their_module_are_imports_of_the_crate_root() {
    use crate::support::imports::{module_depth, super_escapes};
    use std::path::Path;
    let source = "use super::super::{engine::Engine, cli};\nuse super::forms;\nfn f() { super::super::store::open(); }\n";
    assert_eq!(module_depth(Path::new("policy/typosquat/mod.rs")), 2);
    assert_eq!(module_depth(Path::new("policy/license.rs")), 2);
    assert_eq!(module_depth(Path::new("engine.rs")), 1);
    let found = super_escapes(source, 2);
    assert_eq!(
        found,
        [
            (1, "engine".to_owned()),
            (1, "cli".to_owned()),
            (3, "store".to_owned())
        ]
    );
    assert!(super_escapes(source, 3).is_empty());
}
