//! Which of the crate's top-level modules a module tree names: every `crate::<module>` in
//! its `.rs` files, as `use crate::x::…`, `use crate::{x, y::z}` or an inline
//! `crate::x::f()`, and every `super::` chain that climbs out of its top-level module to
//! the crate root (`super::super::x` from `policy/typosquat/mod.rs`). The layer tests check
//! the module graph with it (`admin` never imports `cli`, no layer imports one above it).

use std::path::{Path, PathBuf};

/// One `crate::<module>` named in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateImport {
    /// The file, relative to the scanned directory.
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    pub module: String,
}

/// Every `crate::<module>` named in the `.rs` files below `dir`, file by file; `dir` is a
/// top-level module's directory or `src/` itself (then `super::` escapes count too).
pub fn crate_imports(dir: &Path) -> Vec<CrateImport> {
    let mut files: Vec<PathBuf> = walk(dir);
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let rel = file.strip_prefix(dir).unwrap().to_path_buf();
        let mut named = modules_named(&text);
        if dir.ends_with("src") {
            named.extend(super_escapes(&text, module_depth(&rel)));
            named.sort();
        }
        for (line, module) in named {
            out.push(CrateImport {
                file: rel.clone(),
                line,
                module,
            });
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// (line, module) for each `crate::<module>` in Rust source; comments and string literals
/// do not count.
pub fn modules_named(source: &str) -> Vec<(usize, String)> {
    let code = code_only(source);
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        first_segments(&code, at, at + "crate::".len(), &mut out);
    }
    out.retain(|(_, m)| !m.is_empty());
    out
}

/// How deep the module of a file under `src/` sits: `engine.rs` and `policy/mod.rs` are 1,
/// `policy/typosquat/mod.rs` and `policy/license.rs` 2.
pub fn module_depth(rel: &Path) -> usize {
    let parts = rel.components().count();
    if rel.file_name().is_some_and(|f| f == "mod.rs") {
        parts - 1
    } else {
        parts
    }
}

/// (line, module) for each `super::` chain that reaches the crate root from a module
/// `depth` levels deep, with the top-level module it then names.
pub fn super_escapes(source: &str, depth: usize) -> Vec<(usize, String)> {
    let code = code_only(source);
    let mut out = Vec::new();
    let mut search = 0;
    while let Some(found) = code[search..].find("super::") {
        let at = search + found;
        let before = code[..at].chars().next_back();
        let mut rest = &code[at..];
        let mut climbs = 0;
        while let Some(next) = rest.strip_prefix("super::") {
            climbs += 1;
            rest = next.trim_start();
        }
        search = code.len() - rest.len();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') || climbs < depth {
            continue;
        }
        first_segments(&code, at, search, &mut out);
    }
    out.retain(|(_, m)| !m.is_empty() && m != "self");
    out
}

/// The first segment of the path starting at `code[path_at..]` (each item's, for a
/// `{…}` group), with its line; a plain path counts on the line of its prefix at `prefix_at`.
fn first_segments(code: &str, prefix_at: usize, path_at: usize, out: &mut Vec<(usize, String)>) {
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let rest = &code[path_at..];
    if let Some(group) = rest.strip_prefix('{') {
        let mut offset = path_at + 1;
        for item in top_level_items(group) {
            let lead = item.len() - item.trim_start().len();
            out.push((line_of(offset + lead), ident(item.trim_start()).to_owned()));
            offset += item.len() + 1;
        }
    } else {
        out.push((line_of(prefix_at), ident(rest).to_owned()));
    }
}

fn ident(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The comma-separated items of a `{…}` group, up to its closing brace.
fn top_level_items(group: &str) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (0, 0, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items
}

/// The source with comments, string and char literals blanked out (newlines kept, so
/// line numbers stay right).
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let end = if c == '/' && next == Some('/') {
            chars[i..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(chars.len(), |p| i + p)
        } else if c == '/' && next == Some('*') {
            find(&chars, i + 2, &['*', '/']).map_or(chars.len(), |p| p + 2)
        } else if c == '"' {
            string_end(&chars, i + 1)
        } else if c == 'r' && matches!(next, Some('"' | '#')) && !ident_char(&chars, i) {
            let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
            if chars.get(i + 1 + hashes) == Some(&'"') {
                let close: Vec<char> = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                find(&chars, i + 2 + hashes, &close).map_or(chars.len(), |p| p + close.len())
            } else {
                i + 1
            }
        } else if c == '\'' && next == Some('\\') {
            find(&chars, i + 3, &['\'']).map_or(chars.len(), |p| p + 1)
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            i + 3
        } else {
            out.push(c);
            i += 1;
            continue;
        };
        for &c in &chars[i..end] {
            blank(&mut out, c);
        }
        i = end;
    }
    out
}

/// Whether the character before `i` continues an identifier (so `r"` is not a raw string).
fn ident_char(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

fn find(chars: &[char], from: usize, needle: &[char]) -> Option<usize> {
    (from..chars.len()).find(|&p| chars[p..].starts_with(needle))
}

/// Just past the closing quote of a string whose body starts at `from`.
fn string_end(chars: &[char], from: usize) -> usize {
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}
