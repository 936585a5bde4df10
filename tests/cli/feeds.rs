//! `depfw feeds status` says what the data in use can catch, per ecosystem (#11): the
//! bundled snapshot's npm data is known-malicious packages only, so a clean npm verdict
//! means "not known malicious", not "no known vulnerability".

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
    assert!(
        line("npm").ends_with("known-malicious packages only, no vulnerability advisories"),
        "{text}"
    );
    for eco in ["PyPI", "crates.io"] {
        assert!(
            line(eco).ends_with("vulnerabilities and known-malicious packages"),
            "{text}"
        );
    }
}
