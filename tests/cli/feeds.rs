//! `depfw feeds status` says what the data in use can catch, per ecosystem (#11): the
//! bundled snapshot's npm vulnerability advisories are the old Node.js Security WG list,
//! which stops in 2020, so a clean npm verdict says little about recent vulnerabilities;
//! the status line says how recent each ecosystem's newest advisory is.

use crate::support::{code, depfw_stdin, stdout};

#[test]
fn status_says_which_ecosystems_have_vulnerability_data() {
    let out = depfw_stdin(&["feeds", "status"], "");
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    let line = |eco: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(eco))
            .unwrap_or_else(|| panic!("no {eco} line in {text}"))
            .to_owned()
    };
    for (eco, newest) in [("npm", "2020-"), ("PyPI", "2024-"), ("crates.io", "2026-")] {
        let line = line(eco);
        assert!(line.ends_with("and known-malicious packages"), "{text}");
        assert!(
            line.contains(&format!("vulnerabilities (the newest published {newest}")),
            "{text}"
        );
    }
}

/// Issue #16: `--log-format json` writes one JSON object a line (for a log shipper); the
/// human format writes no colour codes when stderr is not a terminal (a log file).
#[test]
fn log_lines_are_json_with_log_format_json_and_never_coloured_into_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed");
    std::fs::create_dir(&feed).unwrap();
    // An NSWG record whose range does not read: skipped with a warning.
    std::fs::write(
        feed.join("9.json"),
        r#"{"id": 9, "module_name": "odd", "title": "x", "vulnerable_versions": "latest"}"#,
    )
    .unwrap();
    let import = |format: &str, data: &str| {
        crate::support::depfw_with_data(
            &dir.path().join(data),
            &[
                "--log-format",
                format,
                "feeds",
                "import",
                feed.to_str().unwrap(),
            ],
        )
    };
    let out = import("json", "a");
    assert_eq!(code(&out), 0);
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    // The store in use (`data_dir::the_store_line_is_a_json_log_line…`), then the warning.
    assert_eq!(lines.len(), 2, "{stderr}");
    let lines = &lines[1..];
    assert_eq!(lines[0]["level"], "WARN");
    assert!(
        lines[0]["message"].as_str().unwrap().contains("NSWG-ECO-9"),
        "{stderr}"
    );

    let out = import("human", "b");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("WARN") && stderr.contains("NSWG-ECO-9"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a non-terminal: {stderr:?}"
    );
}
