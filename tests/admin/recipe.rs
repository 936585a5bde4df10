//! The recipe for a new ecosystem (ARCHITECTURE.md): its protocol module in `src/registry/`
//! and one line in `protocols!` (`src/server/mod.rs`). This checks that the server really
//! needs nothing else: outside that line, no generic server file names a concrete protocol,
//! its module or its mount, and every per-ecosystem handler file is a listed protocol's
//! quirk handler.

use std::path::Path;

use crate::support::repo;

/// The `field: path::Type` lines of the `protocols! { … }` invocation.
fn listed_protocols(server_mod: &str) -> Vec<(String, String)> {
    let start = server_mod
        .find("\nprotocols! {")
        .expect("src/server/mod.rs invokes protocols!");
    let block = &server_mod[start + "\nprotocols! {".len()..];
    let block = &block[..block.find('}').expect("protocols! block closes")];
    block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .map(|l| {
            let (field, path) = l
                .trim_end_matches(',')
                .split_once(':')
                .expect("field: Type");
            (field.trim().to_owned(), path.trim().to_owned())
        })
        .collect()
}

/// `text` contains `word` as a whole identifier.
fn names(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let ident = |c: char| c.is_alphanumeric() || c == '_';
        let before = text[..i].chars().next_back().is_none_or(|c| !ident(c));
        let after = text[i + word.len()..]
            .chars()
            .next()
            .is_none_or(|c| !ident(c));
        before && after
    })
}

fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_new_ecosystem_needs_no_server_code_beyond_its_line_in_protocols() {
    let server = repo().join("src/server");
    let server_mod = std::fs::read_to_string(server.join("mod.rs")).unwrap();
    let listed = listed_protocols(&server_mod);
    let fields: Vec<&str> = listed.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["npm", "pypi", "cargo"], "{listed:?}");

    // What would tie a generic file to one protocol: its type, its registry module, its mount.
    let mut tells = Vec::new();
    for (field, path) in &listed {
        let ty = path.rsplit("::").next().unwrap().to_owned();
        assert!(
            path.starts_with(&format!("crate::registry::{field}::")),
            "{path}"
        );
        tells.push((ty, false));
        tells.push((format!("registry::{field}"), true));
        tells.push((format!("\"/{field}"), true));
    }

    let mut found = Vec::new();
    for file in rust_files(&server) {
        let stem = file.file_stem().unwrap().to_str().unwrap();
        if fields.contains(&stem) {
            // A listed protocol's quirk handler: named after it, and implementing `Quirks`.
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(
                text.contains("impl Quirks<"),
                "{} has no Quirks impl",
                file.display()
            );
            continue;
        }
        let mut text = std::fs::read_to_string(&file).unwrap();
        if stem == "mod" {
            // The one place protocols are listed.
            let start = text.find("\nprotocols! {").unwrap();
            let end = start + text[start..].find('}').unwrap();
            text.replace_range(start..end, "");
        }
        let code = text.split("#[cfg(test)]").next().unwrap_or(&text);
        for (tell, substring) in &tells {
            let hit = if *substring {
                code.contains(tell.as_str())
            } else {
                names(code, tell)
            };
            if hit {
                found.push(format!("{} names `{tell}`", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "generic server code names a concrete protocol (move it into the protocol's quirk \
         handler, or into the protocol):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_protocol_list_parser_sees_every_line() {
    let listed = listed_protocols(
        "x\nprotocols! {\n    npm: crate::registry::npm::Npm,\n    // c\n    toy: T,\n}\n",
    );
    assert_eq!(
        listed,
        [
            ("npm".to_owned(), "crate::registry::npm::Npm".to_owned()),
            ("toy".to_owned(), "T".to_owned())
        ]
    );
    assert!(names("a Npm b", "Npm") && !names("NpmQuirk", "Npm"));
}
