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
