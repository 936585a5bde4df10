//! The admin endpoint's place in the module graph: it is a server layer, and `cli` (the
//! command line's arguments and printing) sits above it, so nothing in `src/admin/` may
//! name `crate::cli`. Operations both need live below both (`store`, `agents`).

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
