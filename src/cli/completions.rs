//! `depfw completions <shell>` and `depfw manpage`: shell completion scripts and a man page,
//! generated from the clap definitions the binary itself parses with, so they never drift
//! from the real commands and flags.
//!
//! ```sh
//! depfw completions bash > ~/.local/share/bash-completion/completions/depfw
//! depfw manpage > ~/.local/share/man/man1/depfw.1
//! ```

use std::io::Write as _;
use std::process::ExitCode;

use clap::CommandFactory as _;
use clap_complete::Shell;

use super::{exit, Cli};

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to print the completion script for.
    #[arg(value_enum)]
    shell: Shell,
}

/// Prints the completion script. Generated into memory first: clap_complete writing
/// straight to a closed pipe (`| head`) would panic instead of exiting cleanly.
pub(crate) fn completions(args: &CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "depfw", &mut script);
    std::io::stdout().lock().write_all(&script)?;
    Ok(ExitCode::from(exit::CLEAN))
}

/// Prints the man page (roff) for `depfw` and its commands.
pub(crate) fn manpage() -> anyhow::Result<ExitCode> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    std::io::stdout().lock().write_all(&page)?;
    Ok(ExitCode::from(exit::CLEAN))
}
