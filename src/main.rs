//! The `vaultkeeper` binary: parse the command line, run, map errors to an exit code.

fn main() -> std::process::ExitCode {
    vaultkeeper::cli::main()
}
