//! Reading a project's client configs and lockfiles for `depfw doctor`: bounded in size,
//! never a panic on a malformed file (that is a finding with its path), and no parser
//! error text in the output, since the line it quotes may hold a token.

use std::io::Read as _;
use std::path::Path;

use super::{Code, Report};

/// The largest file doctor reads: lockfiles of big monorepos stay well under it.
pub(crate) const MAX_FILE_BYTES: u64 = 32 << 20;

/// A file's text, or `None` when it is absent (not a finding) or unreadable, too large
/// or not UTF-8 (each a finding).
pub(crate) fn read(dir: &Path, rel: &str, report: &mut Report) -> Option<String> {
    let path = dir.join(rel);
    // A FIFO or a device under a config's name would block or never end: regular files only.
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Ok(meta) if !meta.is_file() => {
            report.finding(
                Code::Unreadable,
                rel,
                "not a regular file: not read".to_owned(),
            );
            return None;
        }
        _ => {}
    }
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            report.finding(Code::Unreadable, rel, format!("cannot be read: {e}"));
            return None;
        }
    };
    let mut bytes = Vec::new();
    if let Err(e) = file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes) {
        report.finding(Code::Unreadable, rel, format!("cannot be read: {e}"));
        return None;
    }
    if bytes.len() as u64 > MAX_FILE_BYTES {
        report.finding(
            Code::Unreadable,
            rel,
            format!("larger than {} MiB: not read", MAX_FILE_BYTES >> 20),
        );
        return None;
    }
    match String::from_utf8(bytes) {
        Ok(text) => {
            report.checked.push(rel.to_owned());
            super::tokens::scan(rel, &text, report);
            Some(text)
        }
        Err(_) => {
            report.finding(Code::Malformed, rel, "not UTF-8 text".to_owned());
            None
        }
    }
}

/// A TOML file as a table; a syntax error is a finding with its line.
pub(crate) fn toml(dir: &Path, rel: &str, report: &mut Report) -> Option<toml::Table> {
    let text = read(dir, rel, report)?;
    match text.parse::<toml::Table>() {
        Ok(table) => Some(table),
        Err(e) => {
            let line = e.span().map_or(0, |s| line_of(&text, s.start));
            report.finding(Code::Malformed, rel, format!("line {line}: not valid TOML"));
            None
        }
    }
}

/// A YAML file as a value; a syntax error is a finding with its line.
pub(crate) fn yaml(dir: &Path, rel: &str, report: &mut Report) -> Option<serde_norway::Value> {
    let text = read(dir, rel, report)?;
    match serde_norway::from_str::<serde_norway::Value>(&text) {
        Ok(value) => Some(value),
        Err(e) => {
            let line = e.location().map_or(0, |l| l.line());
            report.finding(Code::Malformed, rel, format!("line {line}: not valid YAML"));
            None
        }
    }
}

/// `key=value` lines of an `.npmrc` (or an INI section's lines): `(line, key, value)`,
/// comments and blank lines skipped.
pub(crate) fn ini_pairs(text: &str) -> impl Iterator<Item = (usize, &str, &str)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            return None;
        }
        let (key, value) = line.split_once('=')?;
        Some((i + 1, key.trim(), value.trim()))
    })
}

/// The pairs of one `[section]` of an INI file (pip.conf).
pub(crate) fn ini_section<'a>(text: &'a str, section: &str) -> Vec<(usize, &'a str, &'a str)> {
    let mut inside = false;
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            inside = name.trim() == section;
        } else if inside {
            pairs.extend(ini_pairs(trimmed).map(|(_, k, v)| (i + 1, k, v)));
        }
    }
    pairs
}

pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// A string value at `path` in a TOML table.
pub(crate) fn toml_str<'a>(table: &'a toml::Table, path: &[&str]) -> Option<&'a str> {
    toml_at(table, path)?.as_str()
}

pub(crate) fn toml_at<'a>(table: &'a toml::Table, path: &[&str]) -> Option<&'a toml::Value> {
    let (last, parents) = path.split_last()?;
    let mut table = table;
    for key in parents {
        table = table.get(*key)?.as_table()?;
    }
    table.get(*last)
}

/// A top-level YAML scalar as text (numbers too).
pub(crate) fn yaml_scalar(value: &serde_norway::Value, key: &str) -> Option<String> {
    match value.get(key)? {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".npmrc")).unwrap();
        let mut report = super::super::tokens::tests::report();
        assert_eq!(read(dir.path(), ".npmrc", &mut report), None);
        assert_eq!(read(dir.path(), "absent", &mut report), None);
        assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
        assert!(report.findings[0].message.starts_with("not a regular file"));
    }

    #[test]
    fn ini_sections_and_pairs() {
        let text = "; c\n[global]\nindex-url = http://x/\n[install]\nindex-url=y\n";
        assert_eq!(
            ini_section(text, "global"),
            vec![(3, "index-url", "http://x/")]
        );
        let npmrc = "# c\nregistry=http://x/\n\nmin-release-age = 2\n";
        let pairs: Vec<_> = ini_pairs(npmrc).collect();
        assert_eq!(
            pairs,
            vec![(2, "registry", "http://x/"), (4, "min-release-age", "2")]
        );
    }
}
