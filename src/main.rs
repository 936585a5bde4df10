use std::process::ExitCode;

fn main() -> ExitCode {
    depfw::cli::main()
}
