//! `depfw completions <shell>` and `depfw manpage` (#16): generated from the same clap
//! definitions the binary parses, so every command appears in them.

use crate::support::{code, depfw, stdout};

/// The top-level commands, as `depfw --help` lists them.
const COMMANDS: [&str; 14] = [
    "serve",
    "init",
    "doctor",
    "check",
    "audit",
    "agents",
    "overrides",
    "quarantine",
    "feeds",
    "log",
    "mcp",
    "completions",
    "manpage",
    "probe",
];

#[test]
fn completion_scripts_name_every_command_in_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F _depfw"),
        ("zsh", "#compdef depfw"),
        ("fish", "complete -c depfw"),
    ] {
        let out = depfw(&["completions", shell]);
        assert_eq!(code(&out), 0, "{shell}");
        let script = stdout(&out);
        assert!(script.contains(marker), "{shell}: {script}");
        for command in COMMANDS {
            assert!(script.contains(command), "{shell} lacks {command}");
        }
    }
    let out = depfw(&["completions", "tcsh"]);
    assert_eq!(code(&out), 2, "an unknown shell is a usage error");
}

#[test]
fn the_man_page_is_roff_and_lists_the_commands() {
    let out = depfw(&["manpage"]);
    assert_eq!(code(&out), 0);
    let page = stdout(&out);
    assert!(page.contains(".TH depfw 1"), "{page}");
    for command in COMMANDS {
        assert!(page.contains(command), "the man page lacks {command}");
    }
}
