//! CLI commands.

pub mod init;
pub mod serve;

use std::process::ExitCode;

pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
